package aqstream.mongo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;

import com.mongodb.client.MongoClient;
import com.mongodb.client.MongoClients;

import de.bwaldvogel.mongo.MongoServer;

/** A {@link ReplicaSetBackend} on a random loopback port, with a file-backed H2 store in {@code dir}. */
final class TestServer implements AutoCloseable {

    final ReplicaSetBackend backend;
    final MongoServer server;
    final int port;

    TestServer(Path dir) {
        this(dir, ReplicaSetBackend.Settings.defaults());
    }

    TestServer(Path dir, ReplicaSetBackend.Settings settings) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        backend = ReplicaSetBackend.open(dir.resolve("mongo.mv"), settings);
        server = new MongoServer(backend);
        server.enableOplog();
        server.bind(new InetSocketAddress("127.0.0.1", 0), 1, 8);
        port = server.getLocalAddress().getPort();
        backend.advertise("127.0.0.1:" + port);
    }

    String uri() {
        return "mongodb://127.0.0.1:" + port + "/?replicaSet=rs0&serverSelectionTimeoutMS=5000";
    }

    MongoClient client() {
        return MongoClients.create(uri());
    }

    @Override
    public void close() {
        server.shutdown();
    }
}
