// The Java driver 4.x (org.apache.cassandra:java-driver-core, from Maven Central) as an independent
// client of a real Cassandra 5.0 node, for the interop test (test/integration/interop_test.cpp). Run
// as a single-file program: java -cp '/opt/cqlcoro/java-driver/lib/*' JavaDriverCheck.java ...
//
//   JavaDriverCheck.java HOST PROTOCOL write KEY   writes the row of edge values under KEY
//   JavaDriverCheck.java HOST PROTOCOL check KEY   reads the row under KEY (written by cqlcoro) and checks
//                                                  every column against the same values; exits 1 naming
//                                                  each column that differs
//
// The table and the values are python_driver.py's and interop_test.cpp's: keep the three in step.
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.datastax.oss.driver.api.core.data.CqlDuration;
import com.datastax.oss.driver.api.core.data.CqlVector;
import com.datastax.oss.driver.api.core.data.TupleValue;
import com.datastax.oss.driver.api.core.data.UdtValue;
import com.datastax.oss.driver.api.core.type.DataTypes;
import com.datastax.oss.driver.api.core.type.TupleType;
import com.datastax.oss.driver.api.core.type.UserDefinedType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;

public class JavaDriverCheck {
    static final String KEYSPACE = "cqlcoro_interop";
    static final String[] COLUMNS = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "m", "n", "o", "si", "ti", "dt",
                                     "tm", "du", "p", "q", "r", "s", "t", "lm", "nested", "ve"};

    static Map<String, Object> expected(CqlSession session) throws Exception {
        TupleType tupleType = DataTypes.tupleOf(DataTypes.INT, DataTypes.TEXT, DataTypes.DOUBLE);
        UserDefinedType address = session.getMetadata().getKeyspace(KEYSPACE).flatMap(k -> k.getUserDefinedType("address"))
                                      .orElseThrow(() -> new IllegalStateException("no type cqlcoro_interop.address"));
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("a", "ascii only");
        v.put("b", Long.MIN_VALUE);
        v.put("c", ByteBuffer.wrap(new byte[] {0x00, (byte) 0xff, 0x10}));
        v.put("d", true);
        v.put("e", new BigDecimal("-1234567890.12345678901234567890"));
        v.put("f", Double.MIN_VALUE);  // the smallest denormal
        v.put("g", -0.0f);
        v.put("h", InetAddress.getByName("2001:db8::1"));
        v.put("i", Integer.MAX_VALUE);
        v.put("j", "h\u00e9llo \u2713");
        v.put("l", Instant.ofEpochMilli(-86_400_123L));
        v.put("m", UUID.fromString("8f2d7c5e-1b3a-4c6d-9e8f-0a1b2c3d4e5f"));
        v.put("n", UUID.fromString("e3e3b1a0-8d2b-11ee-b9d1-0242ac120002"));
        v.put("o", new BigInteger("-98765432109876543210987654321098765432109876543210"));
        v.put("si", Short.MIN_VALUE);
        v.put("ti", Byte.MIN_VALUE);
        v.put("dt", LocalDate.ofEpochDay(Integer.MIN_VALUE));  // the first day CQL has
        v.put("tm", LocalTime.ofNanoOfDay(86_399_999_999_999L));
        v.put("du", CqlDuration.newInstance(-14, -3, -1));
        v.put("p", List.of(3, 1, 2));
        v.put("q", Set.of("x", "y"));
        v.put("r", Map.of("one", 1L, "min", Long.MIN_VALUE));
        v.put("s", tupleType.newValue(7, "seven", null));
        v.put("t", address.newValue().setString("street", "Main St").setInt("zip", 12345));
        v.put("lm", List.of(Map.of("a", 1, "b", -2), Map.of(), Map.of("\u00e9", Integer.MAX_VALUE)));
        v.put("nested", List.of(List.of(1), List.of(), List.of(2, 3)));
        v.put("ve", CqlVector.newInstance(-0.0f, Float.POSITIVE_INFINITY, 1.5f));
        return v;
    }

    // A read value in the form expected() uses.
    static Object read(Row row, String column, Map<String, Object> want) {
        Object w = want.get(column);
        if (w instanceof CqlVector) return row.getVector(column, Float.class);
        if (w instanceof TupleValue) return row.getTupleValue(column);
        if (w instanceof UdtValue) return row.getUdtValue(column);
        return row.getObject(column);
    }

    static boolean same(String column, Object got, Object want) {
        if (column.equals("g")) return got instanceof Float && Float.floatToRawIntBits((Float) got) == Float.floatToRawIntBits((Float) want);
        if (column.equals("ve")) {
            if (!(got instanceof CqlVector)) return false;
            List<Float> g = new ArrayList<>(), w = new ArrayList<>();
            ((CqlVector<?>) got).forEach(x -> g.add((Float) x));
            ((CqlVector<?>) want).forEach(x -> w.add((Float) x));
            if (g.size() != w.size()) return false;
            for (int i = 0; i < g.size(); ++i)
                if (Float.floatToRawIntBits(g.get(i)) != Float.floatToRawIntBits(w.get(i))) return false;
            return true;
        }
        if (got instanceof TupleValue && want instanceof TupleValue)
            return ((TupleValue) got).getFormattedContents().equals(((TupleValue) want).getFormattedContents());
        if (got instanceof UdtValue && want instanceof UdtValue)
            return ((UdtValue) got).getFormattedContents().equals(((UdtValue) want).getFormattedContents());
        return Objects.equals(got, want);
    }

    public static void main(String[] args) throws Exception {
        String host = args[0], verb = args[2];
        int protocol = Integer.parseInt(args[1]), key = Integer.parseInt(args[3]);
        DriverConfigLoader config = DriverConfigLoader.programmaticBuilder()
            .withString(DefaultDriverOption.PROTOCOL_VERSION, "V" + protocol)
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(30))
            .withDuration(DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT, Duration.ofSeconds(30))
            .withDuration(DefaultDriverOption.METADATA_SCHEMA_REQUEST_TIMEOUT, Duration.ofSeconds(30))
            .build();
        try (CqlSession session = CqlSession.builder()
                                      .addContactPoint(new InetSocketAddress(host, 9042))
                                      .withLocalDatacenter("dc1")
                                      .withConfigLoader(config)
                                      .build()) {
            Map<String, Object> want = expected(session);
            if (verb.equals("write")) {
                PreparedStatement insert = session.prepare("INSERT INTO " + KEYSPACE + ".values_ (k, " + String.join(", ", COLUMNS)
                                                           + ") VALUES (?" + ", ?".repeat(COLUMNS.length) + ")");
                // bind() picks each codec from the marker's CQL type and the value.
                List<Object> values = new ArrayList<>();
                values.add(key);
                for (String c : COLUMNS) values.add(want.get(c));
                session.execute(insert.bind(values.toArray()));
                System.out.println("java driver v" + protocol + ": wrote row " + key);
                return;
            }
            Row row = session.execute(SimpleStatement.newInstance(
                "SELECT " + String.join(", ", COLUMNS) + " FROM " + KEYSPACE + ".values_ WHERE k = ?", key)).one();
            if (row == null) {
                System.out.println("java driver: no row " + key);
                System.exit(1);
            }
            int bad = 0;
            for (String c : COLUMNS) {
                Object got = read(row, c, want);
                if (!same(c, got, want.get(c))) {
                    ++bad;
                    System.out.println("java driver: " + c + ": read " + got + ", expected " + want.get(c));
                }
            }
            System.out.println("java driver v" + protocol + ": row " + key + ": " + (COLUMNS.length - bad) + " of " + COLUMNS.length
                               + " columns as expected");
            if (bad > 0) System.exit(1);
        }
    }
}
