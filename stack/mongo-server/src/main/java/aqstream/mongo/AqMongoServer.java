package aqstream.mongo;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;

/**
 * Starts mongo-java-server on loopback with a persistent H2 backend and the oplog on.
 *
 * <p>Usage: {@code java -cp 'jars/lib/mongo/*' aqstream.mongo.AqMongoServer --port 27017 --data-dir DIR [--bind 127.0.0.1]}
 *
 * <p>The server reports MongoDB 4.4 (wire version 9) instead of the library's default 5.0/wire 8
 * pairing, because pymongo 4.20 refuses servers below wire version 9.
 */
public final class AqMongoServer {

    /** MongoDB 4.4 is the first release with wire version 9. */
    static final MongoVersion REPORTED_VERSION = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    private AqMongoServer() {
    }

    public static void main(String[] args) throws Exception {
        String bind = "127.0.0.1";
        int port = 27017;
        Path dataDir = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bind" -> bind = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--data-dir" -> dataDir = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                    + " (usage: --port N --data-dir DIR [--bind HOST])");
            }
        }
        if (dataDir == null) {
            throw new IllegalArgumentException("--data-dir is required (the H2 file lives there)");
        }
        Files.createDirectories(dataDir);
        H2Backend backend = new H2Backend(dataDir.resolve("mongo.mv").toString());
        backend.version(REPORTED_VERSION);
        MongoServer server = new MongoServer(backend);
        server.enableOplog();
        server.bind(bind, port);
        System.out.println("aqstream mongo-java-server listening on " + bind + ":" + port + ", data " + dataDir);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // shutdown() closes the backend, which commits the MVStore: SIGTERM loses nothing.
            server.shutdown();
            stopped.countDown();
        }, "aqstream-mongo-shutdown"));
        stopped.await();
    }
}
