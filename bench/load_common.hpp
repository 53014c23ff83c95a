// Shared by the load benchmarks: cqlsim as a child process, syscall counters, CPU time.
#pragma once

#include <fmt/format.h>

#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <sstream>
#include <string_view>
#include <vector>

namespace bench {

constexpr std::uint16_t port = 19342;

// cqlsim as a child process: stdin a pipe (closing it stops the sim), stdout read until "ready".
struct sim_process {
    /// Starts `path --port 19342 --no-record --rows QUERY ROWS` (QUERY answered with `rows` rows of
    /// (id int, name text), paged by the request's page size).
    sim_process(const std::string& path, const char* query, long rows = 1) {
        int in[2], out[2];
        if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
        pid = fork();
        if (pid == 0) {
            dup2(in[0], 0);
            dup2(out[1], 1);
            close(in[1]);
            close(out[0]);
            unsetenv("LD_PRELOAD");  // a profiler preloaded into the benchmark measures the client only
            execl(path.c_str(), path.c_str(), "--port", std::to_string(port).c_str(), "--no-record", "--rows", query, std::to_string(rows).c_str(),
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        close(in[0]);
        close(out[1]);
        stdin_fd = in[1];
        FILE* o = fdopen(out[0], "r");
        char line[256];
        while (fgets(line, sizeof line, o))
            if (std::string_view(line).starts_with("ready")) return;
        throw std::runtime_error("cqlsim did not start: " + path);
    }
    ~sim_process() {
        close(stdin_fd);
        int status = 0;
        waitpid(pid, &status, 0);
    }
    pid_t pid = 0;
    int stdin_fd = -1;
};

// System calls of this process, counted by the kernel's syscall tracepoints through perf_event_open
// (needs tracefs and perf_event_paranoid <= 2 for one's own process; "n/a" otherwise).
class syscall_counter {
public:
    explicit syscall_counter(const std::string& event) {
        std::ifstream f("/sys/kernel/tracing/events/" + event + "/id");
        std::uint64_t id = 0;
        if (!(f >> id)) return;
        perf_event_attr attr{};
        attr.type = PERF_TYPE_TRACEPOINT;
        attr.size = sizeof attr;
        attr.config = id;
        attr.exclude_kernel = 0;
        fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));  // this process, any CPU
    }
    ~syscall_counter() {
        if (fd_ >= 0) close(fd_);
    }
    std::optional<std::uint64_t> read_count() const {
        std::uint64_t v = 0;
        if (fd_ < 0 || ::read(fd_, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return std::nullopt;
        return v;
    }

private:
    int fd_ = -1;
};

inline std::string per_request(std::optional<std::uint64_t> a, std::optional<std::uint64_t> b, double n) {
    return a && b ? fmt::format("{:.3f}", static_cast<double>(*b - *a) / n) : "n/a";
}

inline double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto s = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

/// The options both load programs take; parse() returns false (after printing the usage) on a bad one.
struct load_options {
    std::vector<int> inflights;
    long requests = 0;  ///< 0: a default per in-flight count
    std::uint8_t version = 4;
    bool lz4 = false;
    long hedge_ms = 0;  ///< session_load: speculative execution after this many ms (0: off)
    std::string chain;  ///< session_load: "request" or "attempt": a pass-through middleware there
    std::string sim_path = CQLSIM_PATH;

    bool parse(int argc, char** argv, const char* usage) {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : throw std::invalid_argument(a + " needs a value"); };
            if (a == "--inflight") {
                inflights.clear();
                std::stringstream ss(next());
                for (std::string k; std::getline(ss, k, ',');) inflights.push_back(std::stoi(k));
            } else if (a == "--requests") {
                requests = std::stol(next());
            } else if (a == "--version") {
                version = static_cast<std::uint8_t>(std::stoi(next()));
            } else if (a == "--hedge") {
                hedge_ms = std::stol(next());
            } else if (a == "--chain") {
                chain = next();
                if (chain != "request" && chain != "attempt") throw std::invalid_argument("--chain: request or attempt");
            } else if (a == "--lz4") {
                lz4 = true;
            } else if (a == "--cqlsim") {
                sim_path = next();
            } else {
                fmt::print(stderr, "usage: {}\n", usage);
                return false;
            }
        }
        return true;
    }
};

}  // namespace bench
