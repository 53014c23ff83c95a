// The Java driver 4.x client of the driver comparison (bench/peers/README.md), written as the driver's
// manual advises for sustained asynchronous load: one CqlSession, executeAsync, and a Semaphore holding
// `concurrency` permits, each released by the request's completion. Same options and the same JSON line
// as every peer client.
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.DefaultConsistencyLevel;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.datastax.oss.driver.api.core.cql.Statement;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

public final class Peer {
    static String host = "127.0.0.1", dc = "datacenter1", workload = "read";
    static int port = 9042, concurrency = 1, rows = 1000;
    static double warmup = 2, duration = 5;

    static void usage(String why) {
        System.err.println("peer_java: " + why + "\nsee bench/peers/README.md for the options");
        System.exit(2);
    }

    static double cpuNow() {
        // User and system time of every thread of the process (the JIT and the GC included).
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        return os.getProcessCpuTime() / 1e9;
    }

    public static void main(String[] args) throws Exception {
        for (int i = 0; i < args.length; i += 2) {
            String a = args[i];
            if (i + 1 >= args.length) usage(a + " needs a value");
            String v = args[i + 1];
            try {
                switch (a) {
                    case "--host" -> host = v;
                    case "--port" -> port = Integer.parseInt(v);
                    case "--dc" -> dc = v;
                    case "--workload" -> workload = v;
                    case "--concurrency" -> concurrency = Integer.parseInt(v);
                    case "--warmup" -> warmup = Double.parseDouble(v);
                    case "--duration" -> duration = Double.parseDouble(v);
                    case "--rows" -> rows = Integer.parseInt(v);
                    default -> usage("unknown option " + a);
                }
            } catch (NumberFormatException e) {
                usage("bad value for " + a);
            }
        }
        if (!workload.equals("read") && !workload.equals("write") && !workload.equals("local"))
            usage("--workload is read, write or local");

        // One connection takes up to 32768 requests (the protocol's stream ids); the default of 1024 would
        // refuse the higher concurrencies, and this is the setting the driver's manual names for it.
        var config = DriverConfigLoader.programmaticBuilder()
                .withInt(DefaultDriverOption.CONNECTION_MAX_REQUESTS, 32768)
                .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(12))
                .withString(DefaultDriverOption.REQUEST_CONSISTENCY, DefaultConsistencyLevel.LOCAL_ONE.name())
                .build();
        try (CqlSession session = CqlSession.builder()
                .addContactPoint(new InetSocketAddress(host, port))
                .withLocalDatacenter(dc)
                .withConfigLoader(config)
                .build()) {
            PreparedStatement read = workload.equals("read") ? session.prepare("SELECT v FROM cqlcoro_peers.kv WHERE k = ?") : null;
            PreparedStatement write = workload.equals("write") ? session.prepare("INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)") : null;
            SimpleStatement local = SimpleStatement.newInstance("SELECT release_version FROM system.local");
            String value = "v".repeat(100);

            AtomicLong ok = new AtomicLong(), errors = new AtomicLong();
            AtomicReference<String> firstError = new AtomicReference<>();
            Semaphore permits = new Semaphore(concurrency);
            var stop = new java.util.concurrent.atomic.AtomicBoolean();
            Thread submitter = new Thread(() -> {
                int x = 1;
                while (!stop.get()) {
                    permits.acquireUninterruptibly();
                    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
                    int k = Integer.remainderUnsigned(x, rows);
                    Statement<?> s = read != null ? read.bind(k) : write != null ? write.bind(k, value) : local;
                    CompletionStage<AsyncResultSet> f = session.executeAsync(s);
                    f.whenComplete((rs, err) -> {
                        if (err == null) {
                            Row row = rs.one();  // a read takes its one value out of the row, as a user does
                            if (read != null && (row == null || row.getString(0).length() != 100)) err = new IllegalStateException("bad row");
                        }
                        if (err == null) ok.incrementAndGet();
                        else {
                            errors.incrementAndGet();
                            firstError.compareAndSet(null, err.toString());
                        }
                        permits.release();
                    });
                }
            });
            submitter.start();
            Thread.sleep((long) (warmup * 1000));
            long ok0 = ok.get(), err0 = errors.get();
            double cpu0 = cpuNow();
            long t0 = System.nanoTime();
            Thread.sleep((long) (duration * 1000));
            long ok1 = ok.get(), err1 = errors.get();
            double cpu1 = cpuNow();
            double seconds = (System.nanoTime() - t0) / 1e9;
            stop.set(true);
            submitter.join();
            permits.acquireUninterruptibly(concurrency);  // every request answered
            String fe = firstError.get() == null ? "" : firstError.get().replaceAll("[\"\\\\\\p{Cntrl}]", "'");
            System.out.printf(java.util.Locale.ROOT, "{\"driver\": \"java-driver\", \"version\": \"4.18.1\", \"workload\": \"%s\", \"concurrency\": %d, "
                    + "\"requests\": %d, \"errors\": %d, \"seconds\": %.4f, \"cpu_seconds\": %.4f, \"first_error\": \"%s\"}%n",
                    workload, concurrency, ok1 - ok0, err1 - err0, seconds, cpu1 - cpu0, fe);
            System.out.flush();
            if (ok1 == ok0) System.exit(1);
        }
    }
}
