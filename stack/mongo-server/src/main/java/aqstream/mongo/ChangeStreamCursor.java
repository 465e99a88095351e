package aqstream.mongo;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.backend.AbstractCursor;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;

/**
 * One open change stream: its scope, options and position in the {@link ChangeLog}. Each batch
 * serves the stored records after the position as change events in MongoDB's shape, runs them
 * through the stages that followed {@code $changeStream} in the pipeline, and moves the position
 * (and the post-batch resume token) past every record it looked at, matched or not.
 */
final class ChangeStreamCursor extends AbstractCursor {

    enum Scope { COLLECTION, DATABASE, DEPLOYMENT }

    /** How many stored records one batch looks at, at most (a bound on the work of one getMore). */
    private static final int SCAN_LIMIT = 10_000;

    private final ChangeLog log;
    private final Scope scope;
    private final String db;
    private final String coll;
    private final String namespace;
    private final Aggregation stages;
    private final String fullDocument;
    private final String fullDocumentBeforeChange;
    /** Looks up a document's current state for {@code fullDocument: updateLookup}: (namespace, _id) to document or null. */
    private final BiFunction<Document, Object, Document> lookup;

    private long position;
    private boolean invalidated;
    private volatile long lastUsedNanos = System.nanoTime();

    ChangeStreamCursor(long id, ChangeLog log, Scope scope, String db, String coll, String namespace, Aggregation stages,
                       String fullDocument, String fullDocumentBeforeChange,
                       BiFunction<Document, Object, Document> lookup, long position) {
        super(id);
        this.log = log;
        this.scope = scope;
        this.db = db;
        this.coll = coll;
        this.namespace = namespace;
        this.stages = stages;
        this.fullDocument = fullDocument;
        this.fullDocumentBeforeChange = fullDocumentBeforeChange;
        this.lookup = lookup;
        this.position = position;
    }

    String namespace() {
        return namespace;
    }

    long idleNanos() {
        return System.nanoTime() - lastUsedNanos;
    }

    boolean isInvalidated() {
        return invalidated;
    }

    Document postBatchResumeToken() {
        return ResumeTokens.token(position);
    }

    @Override
    public boolean isEmpty() {
        return invalidated;
    }

    @Override
    public List<Document> takeDocuments(int numberToReturn) {
        return nextBatch(numberToReturn, 0);
    }

    /**
     * The next events, at most {@code batchSize} (any number when 0); when there are none yet, waits
     * up to {@code awaitMillis} for one (MongoDB's awaitData).
     */
    synchronized List<Document> nextBatch(int batchSize, long awaitMillis) {
        lastUsedNanos = System.nanoTime();
        List<Document> batch = scan(batchSize);
        if (batch.isEmpty() && !invalidated && awaitMillis > 0) {
            try {
                log.awaitAfter(position, awaitMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            batch = scan(batchSize);
        }
        lastUsedNanos = System.nanoTime();
        return batch;
    }

    private List<Document> scan(int batchSize) {
        List<Document> batch = new ArrayList<>();
        if (invalidated) {
            return batch;
        }
        int limit = batchSize > 0 ? batchSize : Integer.MAX_VALUE;
        long highWater = log.highWater();
        List<Map.Entry<Long, Document>> records = log.read(position, highWater, SCAN_LIMIT);
        boolean stoppedEarly = false;
        for (Map.Entry<Long, Document> record : records) {
            if (batch.size() >= limit) {
                stoppedEarly = true;
                break;
            }
            long ts = record.getKey();
            Document stored = record.getValue();
            position = ts;
            if (!inScope(stored)) {
                continue;
            }
            Document event = serve(ts, stored).cloneDeeply();
            stages.runStagesAsStream(Stream.of(event)).forEach(batch::add);
            if (scope == Scope.COLLECTION && "drop".equals(stored.get(ChangeLog.OP))) {
                // a collection stream ends with its collection, as on MongoDB
                batch.add(new Document("_id", ResumeTokens.token(ts))
                    .append("operationType", "invalidate")
                    .append("clusterTime", new BsonTimestamp(ts))
                    .append("wallTime", stored.get(ChangeLog.WALL)));
                invalidated = true;
                return batch;
            }
        }
        if (!stoppedEarly && records.size() < SCAN_LIMIT) {
            position = Math.max(position, highWater);
        }
        return batch;
    }

    private boolean inScope(Document stored) {
        String recordDb = (String) stored.get(ChangeLog.DB);
        return switch (scope) {
            case DEPLOYMENT -> true;
            case DATABASE -> db.equals(recordDb);
            case COLLECTION -> db.equals(recordDb) && coll.equals(stored.get(ChangeLog.COLL));
        };
    }

    /** A stored record as the change event MongoDB would send for it under this stream's options. */
    private Document serve(long ts, Document stored) {
        String op = (String) stored.get(ChangeLog.OP);
        Document ns = new Document("db", stored.get(ChangeLog.DB)).append("coll", stored.get(ChangeLog.COLL));
        Document event = new Document("_id", ResumeTokens.token(ts))
            .append("operationType", op)
            .append("clusterTime", new BsonTimestamp(ts))
            .append("wallTime", stored.get(ChangeLog.WALL))
            .append("ns", ns);
        if (op.equals("drop")) {
            return event;
        }
        Object id = stored.get(ChangeLog.KEY);
        event.append("documentKey", new Document("_id", id));
        switch (op) {
            case "insert", "replace" -> event.append("fullDocument", stored.get(ChangeLog.POST));
            case "update" -> {
                event.append("updateDescription", stored.get(ChangeLog.UPDATE_DESCRIPTION));
                if ("updateLookup".equals(fullDocument)) {
                    event.append("fullDocument", lookup.apply(ns, id));
                } else if ("whenAvailable".equals(fullDocument) || "required".equals(fullDocument)) {
                    event.append("fullDocument", stored.get(ChangeLog.POST));
                }
            }
            default -> {
            }
        }
        if (("whenAvailable".equals(fullDocumentBeforeChange) || "required".equals(fullDocumentBeforeChange))
            && !op.equals("insert")) {
            event.append("fullDocumentBeforeChange", stored.get(ChangeLog.PRE));
        }
        return event;
    }
}
