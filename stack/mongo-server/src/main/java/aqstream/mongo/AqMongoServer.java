package aqstream.mongo;

import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Collections;
import java.util.concurrent.CountDownLatch;

import de.bwaldvogel.mongo.MongoServer;

/**
 * Starts mongo-java-server on loopback with a persistent H2 backend, presented as the primary of a
 * one-member replica set with complete change streams ({@link ReplicaSetBackend}).
 *
 * <p>Usage: {@code java -cp 'jars/lib/mongo/*' aqstream.mongo.AqMongoServer --port 27017 --data-dir DIR
 * [--bind 127.0.0.1] [--replica-set rs0 | --standalone] [--advertised-host HOST:PORT]
 * [--max-change-events N] [--await-data-max-ms MS] [--tls-keystore FILE --tls-keystore-password-file FILE]}
 *
 * <p>With {@code --tls-keystore} (a PKCS12 store holding one private key and its certificate chain, as
 * {@code keytool -genkeypair} makes it) the server speaks TLS only: a client that does not is refused. The
 * password is read from a file so that it never shows in a process list.
 *
 * <p>The server reports MongoDB 4.4 (wire version 9) instead of the library's default 5.0/wire 8
 * pairing, because pymongo 4.20 refuses servers below wire version 9.
 */
public final class AqMongoServer {

    static final String USAGE = "usage: --port N --data-dir DIR [--bind HOST] [--replica-set NAME | --standalone]"
        + " [--advertised-host HOST:PORT] [--max-change-events N] [--await-data-max-ms MS]"
        + " [--tls-keystore FILE --tls-keystore-password-file FILE]";

    /** Netty event loops for client connections: a change-stream getMore waiting for data holds one (see README). */
    static final int WORKER_THREADS = 32;

    private AqMongoServer() {
    }

    public static void main(String[] args) throws Exception {
        String bind = "127.0.0.1";
        int port = 27017;
        Path dataDir = null;
        String advertised = null;
        ReplicaSetBackend.Settings defaults = ReplicaSetBackend.Settings.defaults();
        String replicaSet = defaults.replicaSetName();
        long maxEvents = defaults.maxEvents();
        long awaitMillis = defaults.awaitDataMaxMillis();
        Path tlsKeystore = null;
        Path tlsPasswordFile = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bind" -> bind = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--data-dir" -> dataDir = Path.of(args[++i]);
                case "--replica-set" -> replicaSet = args[++i];
                case "--standalone" -> replicaSet = null;
                case "--advertised-host" -> advertised = args[++i];
                case "--max-change-events" -> maxEvents = Long.parseLong(args[++i]);
                case "--await-data-max-ms" -> awaitMillis = Long.parseLong(args[++i]);
                case "--tls-keystore" -> tlsKeystore = Path.of(args[++i]);
                case "--tls-keystore-password-file" -> tlsPasswordFile = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i] + " (" + USAGE + ")");
            }
        }
        if (dataDir == null) {
            throw new IllegalArgumentException("--data-dir is required (the H2 file lives there; " + USAGE + ")");
        }
        if ((tlsKeystore == null) != (tlsPasswordFile == null)) {
            throw new IllegalArgumentException("--tls-keystore and --tls-keystore-password-file go together (" + USAGE + ")");
        }
        Files.createDirectories(dataDir);
        ReplicaSetBackend backend = ReplicaSetBackend.open(dataDir.resolve("mongo.mv"),
            new ReplicaSetBackend.Settings(replicaSet, maxEvents, awaitMillis));
        MongoServer server = new MongoServer(backend);
        if (tlsKeystore != null) {
            enableTls(server, tlsKeystore, tlsPasswordFile);
        }
        server.enableOplog();
        server.bind(new InetSocketAddress(bind, port), 1, WORKER_THREADS);
        InetSocketAddress local = server.getLocalAddress();
        backend.advertise(advertised != null ? advertised : advertisedHost(bind, local.getPort()));
        System.out.println("aqstream mongo-java-server listening on " + bind + ":" + local.getPort()
            + (replicaSet != null ? ", replica set " + replicaSet + " as " + backend.advertisedHost() : ", standalone")
            + (tlsKeystore != null ? ", TLS only" : "") + ", data " + dataDir);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // shutdown() closes the backend, which commits the MVStore: SIGTERM loses nothing.
            server.shutdown();
            stopped.countDown();
        }, "aqstream-mongo-shutdown"));
        stopped.await();
    }

    /** TLS with the one key entry of a PKCS12 keystore; a store without one fails the start naming it. */
    static void enableTls(MongoServer server, Path keystore, Path passwordFile) throws Exception {
        char[] password = Files.readString(passwordFile, StandardCharsets.UTF_8).strip().toCharArray();
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keystore)) {
            store.load(in, password);
        }
        for (String alias : Collections.list(store.aliases())) {
            if (store.isKeyEntry(alias)) {
                PrivateKey key = (PrivateKey) store.getKey(alias, password);
                Certificate[] chain = store.getCertificateChain(alias);
                server.enableSsl(key, null, Arrays.copyOf(chain, chain.length, X509Certificate[].class));
                return;
            }
        }
        throw new IllegalArgumentException("--tls-keystore " + keystore + " holds no private key entry");
    }

    /** A wildcard bind address is not something a client can dial: advertise loopback then. */
    static String advertisedHost(String bind, int port) {
        String host = bind.equals("0.0.0.0") || bind.equals("::") ? "127.0.0.1" : bind;
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
