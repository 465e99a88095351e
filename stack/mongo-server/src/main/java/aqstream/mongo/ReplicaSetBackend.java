package aqstream.mongo;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.h2.mvstore.MVStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.exception.CursorNotFoundException;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;
import de.bwaldvogel.mongo.wire.BsonConstants;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import io.netty.channel.Channel;

/**
 * mongo-java-server's H2 backend, presented as the primary of a one-member replica set, with change
 * streams complete enough for the Debezium MongoDB connector.
 *
 * <p>What this adds on top of the library (everything else is the library's own behaviour):
 * <ul>
 *   <li>{@code hello} / {@code isMaster} on any database with the replica-set fields drivers use to
 *       classify a primary ({@code setName}, {@code hosts}, {@code me}, {@code primary},
 *       {@code setVersion}, {@code electionId}, {@code lastWrite}, {@code logicalSessionTimeoutMinutes});</li>
 *   <li>{@code replSetGetStatus}, {@code replSetGetConfig}, {@code getParameter featureCompatibilityVersion};</li>
 *   <li>{@code operationTime} and {@code $clusterTime} on every command response;</li>
 *   <li>change streams at collection, database and deployment scope, served from a persistent
 *       {@link ChangeLog} filled by {@link ChangeCapturingCollection}: events with {@code ns},
 *       {@code documentKey}, {@code updateDescription}, {@code clusterTime}, {@code wallTime},
 *       {@code fullDocument} (updateLookup, or the stored post-image for whenAvailable/required),
 *       {@code fullDocumentBeforeChange}, resume with {@code resumeAfter}, {@code startAfter},
 *       {@code startAtOperationTime}, {@code postBatchResumeToken}, and awaitData on getMore.</li>
 * </ul>
 */
public class ReplicaSetBackend extends H2Backend implements ChangeRecorder {

    private static final Logger log = LoggerFactory.getLogger(ReplicaSetBackend.class);

    /** MongoDB 4.4 is the first release with wire version 9, the lowest pymongo 4.20 accepts. */
    public static final MongoVersion REPORTED_VERSION = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    /** A fixed election: the one member has always been primary, in term 1. */
    private static final ObjectId ELECTION_ID = new ObjectId("7fffffff0000000000000001");
    private static final long TERM = 1L;
    private static final Duration CURSOR_IDLE_TIMEOUT = Duration.ofMinutes(10);
    private static final int DEFAULT_FIRST_BATCH = 101;

    /**
     * @param replicaSetName      the set's name; {@code null} presents a standalone server (no change streams)
     * @param maxEvents           how many change records the change log keeps
     * @param awaitDataMaxMillis  how long a change-stream getMore may wait for a new event (it holds
     *                            that connection's event loop meanwhile; see README)
     */
    public record Settings(String replicaSetName, long maxEvents, long awaitDataMaxMillis) {
        public static Settings defaults() {
            return new Settings("rs0", 200_000, 1000);
        }
    }

    private final Settings settings;
    private final ChangeLog changeLog;
    private final Instant started;
    private final Map<Long, ChangeStreamCursor> streams = new ConcurrentHashMap<>();
    private volatile String advertisedHost = "127.0.0.1:27017";
    private MongoVersion version = REPORTED_VERSION;

    public ReplicaSetBackend(MVStore store, Clock clock, Settings settings) {
        super(store, clock);
        this.settings = settings;
        this.changeLog = new ChangeLog(store, clock, settings.maxEvents());
        this.started = clock.instant();
        super.version(REPORTED_VERSION);
    }

    /** Opens (or creates) the H2 file {@code file}. */
    public static ReplicaSetBackend open(Path file, Settings settings) {
        return new ReplicaSetBackend(MVStore.open(file.toString()), Clock.systemUTC(), settings);
    }

    /** The {@code host:port} this member calls itself in {@code hosts}, {@code me} and {@code primary}. */
    public void advertise(String hostAndPort) {
        this.advertisedHost = hostAndPort;
    }

    public String advertisedHost() {
        return advertisedHost;
    }

    boolean isReplicaSet() {
        return settings.replicaSetName() != null;
    }

    @Override
    public MongoBackend version(MongoVersion version) {
        this.version = version;
        return super.version(version);
    }

    // ---------------------------------------------------------------- storage hooks

    @Override
    protected MongoDatabase openOrCreateDatabase(String databaseName) {
        // Called from H2Backend's constructor too (before our fields are set): the database keeps
        // `this` and only uses it when a document changes, by which time construction is over.
        return ChangeCapturingDatabase.open(databaseName, new ChangeCapturingDatabase.Context(getMvStore(), this), getCursorRegistry());
    }

    @Override
    protected Oplog createOplog() {
        return new DropRecordingOplog();
    }

    @Override
    public void inserted(String db, String coll, Document document) {
        changeLog.append(record("insert", db, coll).append(ChangeLog.KEY, document.get("_id")).append(ChangeLog.POST, document));
    }

    @Override
    public void updated(String db, String coll, Document before, Document after, boolean replacement) {
        Document record = record(replacement ? "replace" : "update", db, coll)
            .append(ChangeLog.KEY, after.get("_id"))
            .append(ChangeLog.PRE, before)
            .append(ChangeLog.POST, after);
        if (!replacement) {
            record.append(ChangeLog.UPDATE_DESCRIPTION, UpdateDescriptions.of(before, after));
        }
        changeLog.append(record);
    }

    @Override
    public void deleted(String db, String coll, Document before) {
        changeLog.append(record("delete", db, coll).append(ChangeLog.KEY, before.get("_id")).append(ChangeLog.PRE, before));
    }

    @Override
    public void dropped(String db, String coll) {
        changeLog.append(record("drop", db, coll));
    }

    private static Document record(String op, String db, String coll) {
        return new Document(ChangeLog.OP, op).append(ChangeLog.DB, db).append(ChangeLog.COLL, coll);
    }

    /**
     * The library's oplog hook, kept only for drops (documents changes are recorded per document by
     * {@link ChangeCapturingCollection}, which also sees findAndModify). Change streams never reach
     * {@link #createCursor}: {@link ReplicaSetBackend#handleCommand} answers {@code $changeStream} itself.
     */
    private final class DropRecordingOplog implements Oplog {
        @Override
        public void handleInsert(String namespace, List<Document> documents) {
        }

        @Override
        public void handleUpdate(String namespace, Document selector, Document query, List<Object> modifiedIds) {
        }

        @Override
        public void handleDelete(String namespace, Document query, List<Object> deletedIds) {
        }

        @Override
        public void handleDropCollection(String namespace) {
            String db = Utils.getDatabaseNameFromFullName(namespace);
            String coll = Utils.getCollectionNameFromFullName(namespace);
            if (ChangeRecorder.isCaptured(db, coll)) {
                dropped(db, coll);
            }
        }

        @Override
        public Cursor createCursor(Document changeStreamDocument, String namespace, Aggregation aggregation) {
            throw new IllegalStateException("change streams are served by ReplicaSetBackend, not the library's oplog");
        }
    }

    // ---------------------------------------------------------------- commands

    @Override
    public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
        // Gossip a driver echoes back once it has seen $clusterTime; the library does not expect it.
        query.remove("$clusterTime");
        Document response = dispatch(channel, databaseName, command, query);
        return withClusterTime(response);
    }

    private Document dispatch(Channel channel, String databaseName, String command, Document query) {
        switch (command.toLowerCase(Locale.ROOT)) {
            case "hello", "ismaster":
                return hello(command, query);
            case "replsetgetstatus":
                if (isReplicaSet() && databaseName.equals("admin")) {
                    return replSetGetStatus();
                }
                break;
            case "replsetgetconfig":
                if (isReplicaSet() && databaseName.equals("admin")) {
                    return replSetGetConfig();
                }
                break;
            case "replsetinitiate":
                if (isReplicaSet()) {
                    throw new MongoServerError(23, "AlreadyInitialized", "already initialized");
                }
                break;
            case "getparameter":
                if (databaseName.equals("admin")) {
                    return getParameter(query);
                }
                break;
            case "aggregate":
                List<Document> pipeline = Aggregation.parse(query.get("pipeline"));
                if (!pipeline.isEmpty() && pipeline.get(0).containsKey("$changeStream")) {
                    return openChangeStream(databaseName, query, pipeline);
                }
                break;
            case "getmore":
                Document response = getMoreChangeStream(query, command);
                if (response != null) {
                    return response;
                }
                break;
            default:
                break;
        }
        return super.handleCommand(channel, databaseName, command, query);
    }

    private Document withClusterTime(Document response) {
        if (response == null || !isReplicaSet()) {
            return response;
        }
        BsonTimestamp clusterTime = new BsonTimestamp(changeLog.highWater());
        if (!response.containsKey("operationTime")) {
            response.put("operationTime", clusterTime);
        }
        response.put("$clusterTime", new Document("clusterTime", clusterTime)
            .append("signature", new Document("hash", new BinData(new byte[20])).append("keyId", 0L)));
        return response;
    }

    private Document hello(String command, Document query) {
        boolean legacy = !command.equalsIgnoreCase("hello");
        String me = advertisedHost;
        Document response = new Document();
        if (query.containsKey("helloOk")) {
            response.put("helloOk", Boolean.TRUE);
        }
        response.put(legacy ? "ismaster" : "isWritablePrimary", Boolean.TRUE);
        if (isReplicaSet()) {
            BsonTimestamp opTime = new BsonTimestamp(changeLog.highWater());
            Instant opDate = Instant.ofEpochSecond(opTime.getTime());
            Document opTimeDoc = new Document("ts", opTime).append("t", TERM);
            // No topologyVersion: it would switch drivers to the streaming hello protocol (exhaust
            // cursors), which mongo-java-server's wire layer cannot do. Drivers poll instead.
            response.put("hosts", List.of(me));
            response.put("setName", settings.replicaSetName());
            response.put("setVersion", 1);
            response.put("secondary", Boolean.FALSE);
            response.put("primary", me);
            response.put("me", me);
            response.put("electionId", ELECTION_ID);
            response.put("lastWrite", new Document("opTime", opTimeDoc)
                .append("lastWriteDate", opDate)
                .append("majorityOpTime", opTimeDoc)
                .append("majorityWriteDate", opDate));
        }
        response.put("maxBsonObjectSize", BsonConstants.MAX_BSON_OBJECT_SIZE);
        response.put("maxMessageSizeBytes", MongoWireProtocolHandler.MAX_MESSAGE_SIZE_BYTES);
        response.put("maxWriteBatchSize", MongoWireProtocolHandler.MAX_WRITE_BATCH_SIZE);
        response.put("localTime", Instant.now(getClock()));
        if (isReplicaSet()) {
            response.put("logicalSessionTimeoutMinutes", 30);
        }
        response.put("minWireVersion", 0);
        response.put("maxWireVersion", version.getWireVersion());
        response.put("readOnly", Boolean.FALSE);
        Utils.markOkay(response);
        return response;
    }

    private Document replSetGetStatus() {
        BsonTimestamp opTime = new BsonTimestamp(changeLog.highWater());
        Instant now = Instant.now(getClock());
        Document opTimeDoc = new Document("ts", opTime).append("t", TERM);
        Document member = new Document("_id", 0)
            .append("name", advertisedHost)
            .append("health", 1.0)
            .append("state", 1)
            .append("stateStr", "PRIMARY")
            .append("uptime", (int) Duration.between(started, now).getSeconds())
            .append("optime", opTimeDoc)
            .append("optimeDate", Instant.ofEpochSecond(opTime.getTime()))
            .append("electionTime", new BsonTimestamp(changeLog.start()))
            .append("electionId", ELECTION_ID)
            .append("configVersion", 1)
            .append("configTerm", TERM)
            .append("self", Boolean.TRUE);
        Document response = new Document("set", settings.replicaSetName())
            .append("date", now)
            .append("myState", 1)
            .append("term", TERM)
            .append("heartbeatIntervalMillis", 2000L)
            .append("optimes", new Document("lastCommittedOpTime", opTimeDoc)
                .append("appliedOpTime", opTimeDoc)
                .append("durableOpTime", opTimeDoc))
            .append("members", List.of(member));
        Utils.markOkay(response);
        return response;
    }

    private Document replSetGetConfig() {
        Document member = new Document("_id", 0)
            .append("host", advertisedHost)
            .append("arbiterOnly", Boolean.FALSE)
            .append("hidden", Boolean.FALSE)
            .append("priority", 1.0)
            .append("votes", 1);
        Document config = new Document("_id", settings.replicaSetName())
            .append("version", 1)
            .append("term", TERM)
            .append("protocolVersion", 1L)
            .append("members", List.of(member));
        Document response = new Document("config", config);
        Utils.markOkay(response);
        return response;
    }

    private Document getParameter(Document query) {
        Document response = new Document();
        boolean all = "*".equals(query.get("getParameter"));
        if (all || query.containsKey("featureCompatibilityVersion")) {
            List<Integer> v = version.getVersionArray();
            response.put("featureCompatibilityVersion", new Document("version", v.get(0) + "." + v.get(1)));
        }
        Utils.markOkay(response);
        return response;
    }

    // ---------------------------------------------------------------- change streams

    private Document openChangeStream(String databaseName, Document query, List<Document> pipeline) {
        if (!isReplicaSet()) {
            throw new MongoServerError(40573, "Location40573", "The $changeStream stage is only supported on replica sets");
        }
        sweepIdleStreams();
        if (!(pipeline.get(0).get("$changeStream") instanceof Document spec)) {
            throw new MongoServerError(50808, "Location50808", "$changeStream stage expects a document as argument");
        }
        Object target = query.get("aggregate");
        boolean allChanges = Utils.isTrue(spec.get("allChangesForCluster"));
        boolean admin = databaseName.equals("admin");
        final ChangeStreamCursor.Scope scope;
        final String collection;
        final String namespace;
        if (target instanceof String name) {
            if (admin || allChanges || !ChangeRecorder.isCaptured(databaseName, name)) {
                throw new MongoServerError(73, "InvalidNamespace", "$changeStream may not be opened on the internal " + databaseName + "." + name + " collection");
            }
            scope = ChangeStreamCursor.Scope.COLLECTION;
            collection = name;
            namespace = databaseName + "." + name;
        } else if (admin) {
            if (!allChanges) {
                throw new MongoServerError(73, "InvalidNamespace", "$changeStream may not be opened on the internal admin database");
            }
            scope = ChangeStreamCursor.Scope.DEPLOYMENT;
            collection = null;
            namespace = "admin.$cmd.aggregate";
        } else {
            if (allChanges || !ChangeRecorder.isCaptured(databaseName, "x")) {
                throw new MongoServerError(73, "InvalidNamespace", "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and not on " + databaseName);
            }
            scope = ChangeStreamCursor.Scope.DATABASE;
            collection = null;
            namespace = databaseName + ".$cmd.aggregate";
        }

        String fullDocument = option(spec, "fullDocument", "default", Set.of("default", "updateLookup", "whenAvailable", "required"));
        String beforeChange = option(spec, "fullDocumentBeforeChange", "off", Set.of("off", "whenAvailable", "required"));
        long position = startPosition(spec);

        // Only stateless stages are allowed after $changeStream ($match, $project, $addFields, $set,
        // $unset, $replaceRoot, $redact): they need neither a database nor a collection.
        Aggregation stages = Aggregation.fromPipeline(pipeline.subList(1, pipeline.size()), this::resolveDatabase, null, null, oplog);

        long id = getCursorRegistry().generateCursorId();
        ChangeStreamCursor cursor = new ChangeStreamCursor(id, changeLog, scope, databaseName, collection, namespace, stages,
            fullDocument, beforeChange, this::lookUp, position);
        getCursorRegistry().add(cursor);
        streams.put(id, cursor);
        log.info("opened change stream {} on {} ({} scope) at {}", id, namespace, scope, ResumeTokens.describe(position));

        int batchSize = DEFAULT_FIRST_BATCH;
        if (query.get("cursor") instanceof Document cursorSpec && cursorSpec.get("batchSize") instanceof Number n) {
            batchSize = n.intValue();
        }
        List<Document> firstBatch = batchSize == 0 ? List.of() : cursor.nextBatch(batchSize, 0);
        return cursorResponse(cursor, "firstBatch", firstBatch);
    }

    private static String option(Document spec, String name, String defaultValue, Set<String> allowed) {
        Object value = spec.getOrDefault(name, defaultValue);
        if (!(value instanceof String text) || !allowed.contains(text)) {
            throw new MongoServerError(9, "FailedToParse", "unsupported " + name + " '" + value + "', expected one of " + allowed);
        }
        return text;
    }

    /** The change-log position a new stream starts after. */
    private long startPosition(Document spec) {
        Object resumeAfter = spec.get("resumeAfter");
        Object startAfter = spec.get("startAfter");
        Object startAt = spec.get("startAtOperationTime");
        int given = (resumeAfter != null ? 1 : 0) + (startAfter != null ? 1 : 0) + (startAt != null ? 1 : 0);
        if (given > 1) {
            throw new MongoServerError(40674, "Location40674", "Only one type of resume option is allowed, but multiple were found");
        }
        if (resumeAfter != null || startAfter != null) {
            long position = ResumeTokens.clusterTime(resumeAfter != null ? resumeAfter : startAfter);
            changeLog.checkResumable(position);
            return position;
        }
        if (startAt != null) {
            if (!(startAt instanceof BsonTimestamp ts)) {
                throw new MongoServerError(14, "TypeMismatch", "startAtOperationTime must be a timestamp");
            }
            changeLog.checkResumable(ts.getValue());
            return ts.getValue() - 1; // inclusive: events at that very time are delivered
        }
        return changeLog.highWater();
    }

    private Document getMoreChangeStream(Document query, String command) {
        long cursorId = ((Number) query.get(command)).longValue();
        Cursor cursor;
        try {
            cursor = getCursorRegistry().getCursor(cursorId);
        } catch (CursorNotFoundException e) {
            streams.remove(cursorId);
            return null; // let the library answer CursorNotFound
        }
        if (!(cursor instanceof ChangeStreamCursor stream)) {
            return null;
        }
        int batchSize = query.get("batchSize") instanceof Number n ? n.intValue() : 0;
        long await = settings.awaitDataMaxMillis();
        if (query.get("maxTimeMS") instanceof Number maxTime) {
            await = Math.min(await, maxTime.longValue());
        }
        List<Document> batch = stream.nextBatch(batchSize, await);
        if (stream.isInvalidated()) {
            getCursorRegistry().remove(stream);
            streams.remove(cursorId);
        }
        return cursorResponse(stream, "nextBatch", batch);
    }

    private static Document cursorResponse(ChangeStreamCursor stream, String batchField, List<Document> batch) {
        long id = stream.isInvalidated() ? 0L : stream.getId();
        Document cursor = new Document("id", id)
            .append("ns", stream.namespace())
            .append(batchField, batch)
            .append("postBatchResumeToken", stream.postBatchResumeToken());
        Document response = new Document("cursor", cursor);
        Utils.markOkay(response);
        return response;
    }

    /** The current state of a document, for {@code fullDocument: updateLookup} (null once deleted). */
    private Document lookUp(Document ns, Object id) {
        MongoDatabase database = resolveDatabase((String) ns.get("db"));
        MongoCollection<?> collection = database.resolveCollection((String) ns.get("coll"), false);
        if (collection == null) {
            return null;
        }
        return collection.handleQueryAsStream(new Document("_id", id))
            .findFirst()
            .map(Document::cloneDeeply)
            .orElse(null);
    }

    private void sweepIdleStreams() {
        long timeout = CURSOR_IDLE_TIMEOUT.toNanos();
        streams.values().removeIf(stream -> {
            if (stream.idleNanos() > timeout) {
                getCursorRegistry().remove(stream);
                return true;
            }
            return false;
        });
    }

    /** For tests and the README's claims: how many change records are kept. */
    long changeRecords() {
        return changeLog.size();
    }
}
