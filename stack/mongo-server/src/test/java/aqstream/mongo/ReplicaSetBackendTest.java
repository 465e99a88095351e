package aqstream.mongo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.bson.BsonDocument;
import org.bson.BsonTimestamp;
import org.bson.Document;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.mongodb.MongoCommandException;
import com.mongodb.client.ChangeStreamIterable;
import com.mongodb.client.MongoChangeStreamCursor;
import com.mongodb.client.MongoClient;
import com.mongodb.client.MongoClients;
import com.mongodb.client.MongoCollection;
import com.mongodb.client.model.Aggregates;
import com.mongodb.client.model.Filters;
import com.mongodb.client.model.FindOneAndUpdateOptions;
import com.mongodb.client.model.ReturnDocument;
import com.mongodb.client.model.Updates;
import com.mongodb.client.model.changestream.ChangeStreamDocument;
import com.mongodb.client.model.changestream.FullDocument;
import com.mongodb.client.model.changestream.FullDocumentBeforeChange;
import com.mongodb.client.model.changestream.OperationType;
import com.mongodb.connection.ClusterType;
import com.mongodb.connection.ServerDescription;
import com.mongodb.connection.ServerType;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;

class ReplicaSetBackendTest {

    @TempDir
    Path dir;

    private TestServer server;
    private MongoClient client;
    private MongoCollection<Document> readings;

    @BeforeEach
    void start() {
        server = new TestServer(dir);
        client = server.client();
        readings = client.getDatabase("airquality").getCollection("readings_raw");
    }

    @AfterEach
    void stop() {
        if (client != null) {
            client.close();
        }
        if (server != null) {
            server.close();
        }
    }

    private void restart() {
        client.close();
        server.close();
        server = new TestServer(dir);
        client = server.client();
        readings = client.getDatabase("airquality").getCollection("readings_raw");
    }

    /** Up to {@code n} events, polling with a short awaitData so an empty stream ends the test quickly. */
    private static List<ChangeStreamDocument<Document>> take(MongoChangeStreamCursor<ChangeStreamDocument<Document>> cursor, int n) {
        List<ChangeStreamDocument<Document>> events = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (events.size() < n && System.nanoTime() < deadline) {
            ChangeStreamDocument<Document> event = cursor.tryNext();
            if (event != null) {
                events.add(event);
            }
        }
        return events;
    }

    private static <T> ChangeStreamIterable<T> quick(ChangeStreamIterable<T> stream) {
        return stream.maxAwaitTime(100, TimeUnit.MILLISECONDS);
    }

    @Test
    void javaDriverSeesAReplicaSetPrimary() {
        client.listDatabaseNames().first();
        var description = client.getClusterDescription();
        assertEquals(ClusterType.REPLICA_SET, description.getType());
        ServerDescription primary = description.getServerDescriptions().get(0);
        assertEquals(ServerType.REPLICA_SET_PRIMARY, primary.getType());
        assertEquals("rs0", primary.getSetName());
        assertEquals(List.of("127.0.0.1:" + server.port), List.copyOf(primary.getHosts()));
        assertNotNull(primary.getLogicalSessionTimeoutMinutes(), "sessions are advertised");

        Document status = client.getDatabase("admin").runCommand(new Document("replSetGetStatus", 1));
        assertEquals("rs0", status.getString("set"));
        Document member = status.getList("members", Document.class).get(0);
        assertEquals("PRIMARY", member.getString("stateStr"));
    }

    @Test
    void helloOnAnyDatabaseCarriesOperationTime() {
        // what Debezium's MongoUtils.hello reads before a snapshot
        readings.insertOne(new Document("_id", "x"));
        BsonDocument hello = client.getDatabase("airquality").runCommand(new Document("hello", 1), BsonDocument.class);
        assertTrue(hello.getBoolean("isWritablePrimary").getValue());
        BsonTimestamp operationTime = hello.getTimestamp("operationTime");
        assertTrue(operationTime.getTime() > 0);
        BsonDocument isMaster = client.getDatabase("airquality").runCommand(new Document("isMaster", 1), BsonDocument.class);
        assertEquals(operationTime, isMaster.getTimestamp("operationTime"));
        assertTrue(isMaster.containsKey("$clusterTime"));
    }

    @Test
    void collectionStreamCarriesCompleteEvents() {
        try (var cursor = quick(readings.watch().fullDocument(FullDocument.UPDATE_LOOKUP)).cursor()) {
            readings.insertOne(new Document("_id", "s1|2024-01-01T00").append("pm25", 10.0).append("n", new Document("a", 1).append("b", 2)));
            readings.updateOne(Filters.eq("_id", "s1|2024-01-01T00"),
                Updates.combine(Updates.set("pm25", 12.5), Updates.set("n.a", 5), Updates.unset("n.b")));
            readings.replaceOne(Filters.eq("_id", "s1|2024-01-01T00"), new Document("pm25", 1.0));
            readings.findOneAndUpdate(Filters.eq("_id", "s1|2024-01-01T00"), Updates.inc("pm25", 1.0),
                new FindOneAndUpdateOptions().returnDocument(ReturnDocument.AFTER));
            readings.deleteOne(Filters.eq("_id", "s1|2024-01-01T00"));

            List<ChangeStreamDocument<Document>> events = take(cursor, 5);
            assertEquals(List.of(OperationType.INSERT, OperationType.UPDATE, OperationType.REPLACE, OperationType.UPDATE, OperationType.DELETE),
                events.stream().map(ChangeStreamDocument::getOperationType).toList());
            BsonTimestamp previous = null;
            for (var event : events) {
                assertEquals("airquality", event.getNamespace().getDatabaseName());
                assertEquals("readings_raw", event.getNamespace().getCollectionName());
                assertEquals("s1|2024-01-01T00", event.getDocumentKey().getString("_id").getValue());
                assertNotNull(event.getClusterTime());
                assertNotNull(event.getWallTime());
                if (previous != null) {
                    assertTrue(event.getClusterTime().compareTo(previous) > 0, "cluster times increase");
                }
                previous = event.getClusterTime();
            }
            assertEquals(10.0, events.get(0).getFullDocument().getDouble("pm25"));

            var update = events.get(1).getUpdateDescription();
            assertNotNull(update);
            assertEquals(12.5, update.getUpdatedFields().getDouble("pm25").getValue());
            assertEquals(5, update.getUpdatedFields().getInt32("n.a").getValue());
            assertEquals(List.of("n.b"), update.getRemovedFields());

            assertEquals(new Document("_id", "s1|2024-01-01T00").append("pm25", 1.0), events.get(2).getFullDocument());
            assertEquals(2.0, events.get(3).getUpdateDescription().getUpdatedFields().getDouble("pm25").getValue(),
                "findAndModify is captured too");
            assertNull(events.get(4).getFullDocument());
        }
    }

    @Test
    void updateLookupReturnsTheCurrentDocument() {
        readings.insertOne(new Document("_id", 1).append("v", 1));
        try (var cursor = quick(readings.watch().fullDocument(FullDocument.UPDATE_LOOKUP)).cursor()) {
            readings.updateOne(Filters.eq("_id", 1), Updates.set("v", 2));
            var event = take(cursor, 1).get(0);
            assertEquals(new Document("_id", 1).append("v", 2), event.getFullDocument());
        }
        try (var cursor = quick(readings.watch()).cursor()) {
            readings.updateOne(Filters.eq("_id", 1), Updates.set("v", 3));
            assertNull(take(cursor, 1).get(0).getFullDocument(), "no fullDocument unless asked");
        }
    }

    @Test
    void postAndPreImagesWhenAsked() {
        readings.insertOne(new Document("_id", 1).append("v", 1));
        try (var cursor = quick(readings.watch().fullDocument(FullDocument.WHEN_AVAILABLE)
            .fullDocumentBeforeChange(FullDocumentBeforeChange.WHEN_AVAILABLE)).cursor()) {
            readings.updateOne(Filters.eq("_id", 1), Updates.set("v", 2));
            readings.updateOne(Filters.eq("_id", 1), Updates.set("v", 3));
            var events = take(cursor, 2);
            assertEquals(new Document("_id", 1).append("v", 2), events.get(0).getFullDocument());
            assertEquals(new Document("_id", 1).append("v", 1), events.get(0).getFullDocumentBeforeChange());
            assertEquals(new Document("_id", 1).append("v", 3), events.get(1).getFullDocument());
        }
    }

    @Test
    void resumeAfterAndStartAtOperationTime() {
        BsonDocument firstToken;
        BsonTimestamp firstTime;
        try (var cursor = quick(readings.watch()).cursor()) {
            for (int i = 0; i < 3; i++) {
                readings.insertOne(new Document("_id", i));
            }
            var first = take(cursor, 1).get(0);
            firstToken = first.getResumeToken();
            firstTime = first.getClusterTime();
        }
        try (var cursor = quick(readings.watch().resumeAfter(firstToken)).cursor()) {
            var rest = take(cursor, 2);
            assertNull(cursor.tryNext());
            assertEquals(List.of(1, 2), rest.stream().map(e -> e.getDocumentKey().getInt32("_id").getValue()).toList());
        }
        try (var cursor = quick(readings.watch().startAfter(firstToken)).cursor()) {
            assertEquals(2, take(cursor, 2).size());
            assertNull(cursor.tryNext());
        }
        try (var cursor = quick(readings.watch().startAtOperationTime(firstTime)).cursor()) {
            assertEquals(3, take(cursor, 3).size(), "startAtOperationTime is inclusive");
            assertNull(cursor.tryNext());
        }
    }

    @Test
    void idleStreamHasAPostBatchResumeTokenThatDebeziumCanDecode() {
        readings.insertOne(new Document("_id", "before"));
        try (var cursor = quick(readings.watch()).cursor()) {
            assertNull(cursor.tryNext());
            BsonDocument token = cursor.getResumeToken();
            assertNotNull(token, "postBatchResumeToken");
            // Debezium's ResumeTokens#getTimestamp: first byte 130, then the 8-byte timestamp
            String data = token.getString("_data").getValue();
            assertEquals("82", data.substring(0, 2));
            readings.insertOne(new Document("_id", "after"));
            try (var resumed = quick(readings.watch().resumeAfter(token)).cursor()) {
                var events = take(resumed, 1);
                assertNull(resumed.tryNext());
                assertEquals("after", events.get(0).getDocumentKey().getString("_id").getValue());
            }
        }
    }

    @Test
    void databaseAndDeploymentScopes() {
        try (var db = quick(client.getDatabase("airquality").watch()).cursor();
             var all = quick(client.watch()).cursor()) {
            readings.insertOne(new Document("_id", 1));
            client.getDatabase("other").getCollection("things").insertOne(new Document("_id", 2));
            client.getDatabase("airquality").getCollection("stations").insertOne(new Document("_id", 3));

            var dbEvents = take(db, 2);
            assertNull(db.tryNext());
            assertEquals(List.of("readings_raw", "stations"),
                dbEvents.stream().map(e -> e.getNamespace().getCollectionName()).toList());
            var allEvents = take(all, 3);
            assertNull(all.tryNext());
            assertEquals(List.of("airquality.readings_raw", "other.things", "airquality.stations"),
                allEvents.stream().map(e -> e.getNamespace().getFullName()).toList());
        }
    }

    @Test
    void debeziumStylePipelineFiltersByNamespace() {
        // the stages Debezium 3.3 appends for collection.include.list in regex mode
        var pipeline = List.of(
            Aggregates.replaceRoot(new Document("namespace", new Document("$concat", List.of("$ns.db", ".", "$ns.coll")))
                .append("event", "$$ROOT")),
            Aggregates.match(Filters.and(
                Filters.regex("namespace", "airquality.readings_raw", "i"),
                Filters.in("event.operationType", List.of("insert", "update", "replace", "delete")))),
            Aggregates.replaceRoot("$event"));
        try (var cursor = quick(client.watch(pipeline)).cursor()) {
            client.getDatabase("airquality").getCollection("stations").insertOne(new Document("_id", 1));
            readings.insertOne(new Document("_id", 2));
            var events = take(cursor, 1);
            assertNull(cursor.tryNext());
            assertEquals("readings_raw", events.get(0).getNamespace().getCollectionName());
        }
    }

    @Test
    void dropInvalidatesACollectionStream() {
        readings.insertOne(new Document("_id", 1));
        try (var cursor = quick(readings.watch()).cursor()) {
            readings.drop();
            var events = take(cursor, 2);
            assertEquals(List.of(OperationType.DROP, OperationType.INVALIDATE),
                events.stream().map(ChangeStreamDocument::getOperationType).toList());
        }
    }

    @Test
    void restartKeepsDocumentsAndResumeTokens() {
        BsonDocument token;
        try (var cursor = quick(readings.watch()).cursor()) {
            readings.insertOne(new Document("_id", "kept").append("pm10", 3.0));
            token = take(cursor, 1).get(0).getResumeToken();
        }
        readings.insertOne(new Document("_id", "while-away"));
        restart();
        assertEquals(3.0, readings.find(Filters.eq("_id", "kept")).first().getDouble("pm10"));
        readings.insertOne(new Document("_id", "after-restart"));
        try (var cursor = quick(readings.watch().resumeAfter(token)).cursor()) {
            var events = take(cursor, 2);
            assertNull(cursor.tryNext());
            assertEquals(List.of("while-away", "after-restart"),
                events.stream().map(e -> e.getDocumentKey().getString("_id").getValue()).toList());
            BsonTimestamp before = events.get(0).getClusterTime();
            assertTrue(events.get(1).getClusterTime().compareTo(before) > 0, "cluster time keeps increasing after a restart");
        }
    }

    @Test
    void tokenOlderThanTheHistoryIsRejected() {
        BsonDocument ancient = new BsonDocument("_data", new org.bson.BsonString("82" + "0000000100000001"));
        var error = assertThrows(MongoCommandException.class, () -> {
            try (var cursor = readings.watch().resumeAfter(ancient).cursor()) {
                cursor.tryNext();
            }
        });
        assertEquals(286, error.getErrorCode());
    }

    @Test
    void plainLibraryReadsOurDataDirectory() {
        readings.insertOne(new Document("_id", "compat").append("v", 1));
        client.close();
        client = null;
        server.close();
        server = null;
        // the same file, opened by the library's own H2Backend: documents are where it expects them
        H2Backend plain = new H2Backend(dir.resolve("mongo.mv").toString());
        MongoServer plainServer = new MongoServer(plain);
        plainServer.bind(new InetSocketAddress("127.0.0.1", 0));
        try (MongoClient plainClient = MongoClients.create("mongodb://127.0.0.1:" + plainServer.getLocalAddress().getPort()
            + "/?directConnection=true")) {
            Document found = plainClient.getDatabase("airquality").getCollection("readings_raw").find().first();
            assertEquals(new Document("_id", "compat").append("v", 1), found);
        } finally {
            plainServer.shutdown();
        }
    }

    @Test
    void standaloneModeHasNoChangeStreams() {
        Path other = dir.resolve("standalone");
        try (TestServer standalone = new TestServer(other, new ReplicaSetBackend.Settings(null, 10, 100));
             MongoClient direct = MongoClients.create("mongodb://127.0.0.1:" + standalone.port + "/?directConnection=true")) {
            Document hello = direct.getDatabase("admin").runCommand(new Document("hello", 1));
            assertFalse(hello.containsKey("setName"));
            var coll = direct.getDatabase("a").getCollection("b");
            coll.insertOne(new Document("_id", 1));
            assertThrows(MongoCommandException.class, () -> coll.watch().cursor().tryNext());
        }
    }

    @Test
    void historyIsTrimmedToTheConfiguredSize() {
        client.close();
        server.close();
        server = new TestServer(dir.resolve("small"), new ReplicaSetBackend.Settings("rs0", 3, 100));
        client = server.client();
        var coll = client.getDatabase("a").getCollection("b");
        for (int i = 0; i < 10; i++) {
            coll.insertOne(new Document("_id", i));
        }
        assertEquals(3, server.backend.changeRecords());
    }
}
