// The machine's floor for one request in flight: two processes exchange a 40-byte message over
// loopback TCP with blocking reads and writes, nothing else. No driver can answer faster than this
// round trip; bench/README.md compares session_load's one-in-flight figure with it.
//
//   loopback_floor [round trips]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

bool exchange(int fd, char* buf, std::size_t n, bool write_first) {
    auto all = [&](bool write) {
        for (std::size_t done = 0; done < n;) {
            const auto r = write ? ::write(fd, buf + done, n - done) : ::read(fd, buf + done, n - done);
            if (r <= 0) return false;
            done += static_cast<std::size_t>(r);
        }
        return true;
    };
    return write_first ? all(true) && all(false) : all(false) && all(true);
}

}  // namespace

int main(int argc, char** argv) {
    const long trips = argc > 1 ? std::atol(argv[1]) : 50'000;
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        std::perror("listen");
        return 1;
    }
    const int one = 1;
    char buf[40] = {};
    if (fork() == 0) {  // the echoing peer
        const int fd = accept(listener, nullptr, nullptr);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        while (exchange(fd, buf, sizeof buf, false)) {}
        _exit(0);
    }
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::perror("connect");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < trips; ++i)
        if (!exchange(fd, buf, sizeof buf, true)) return 1;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    close(fd);
    wait(nullptr);
    std::printf("%ld round trips of 40 bytes, blocking, two processes: %.0f round trips/s, %.1f us each\n", trips, trips / s, s * 1e6 / trips);
}
