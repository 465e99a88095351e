package aqstream.mongo;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.h2.mvstore.Cursor;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * The server's change history: one record per changed document, keyed by its cluster time, kept in
 * the same H2 MVStore as the data, so records (and the resume tokens pointing at them) survive a
 * restart and are committed together with the documents they describe.
 *
 * <p>A key is a BSON timestamp as a long ({@code seconds << 32 | increment}); keys strictly
 * increase. {@link #highWater()} is the newest key that is visible to readers (or the time the log
 * was opened when that is newer): every record with a key at or below it is in the map.
 *
 * <p>Records are kept up to {@code maxEvents}; older ones are trimmed, and a resume point before the
 * oldest kept one fails with {@code ChangeStreamHistoryLost}, as on a real replica set whose oplog
 * rolled over.
 */
final class ChangeLog {

    static final String EVENTS_MAP = "aqstream.changestream.events";
    static final String META_MAP = "aqstream.changestream.meta";
    private static final String START_KEY = "start";

    // field names of a stored record (not what a client sees: see ChangeStreamCursor#serve)
    static final String OP = "op";
    static final String DB = "db";
    static final String COLL = "coll";
    static final String KEY = "key";
    static final String WALL = "wall";
    static final String PRE = "pre";
    static final String POST = "post";
    static final String UPDATE_DESCRIPTION = "upd";

    private final MVMap<Long, Document> events;
    private final MVMap<String, Long> meta;
    private final Clock clock;
    private final long maxEvents;
    private final Object lock = new Object();

    /** Guarded by {@link #lock} for writes; read freely. */
    private volatile long highWater;
    private volatile long start;

    ChangeLog(MVStore store, Clock clock, long maxEvents) {
        this.events = store.openMap(EVENTS_MAP);
        this.meta = store.openMap(META_MAP);
        this.clock = clock;
        this.maxEvents = maxEvents;
        long now = nowTs();
        Long storedStart = meta.get(START_KEY);
        if (storedStart == null) {
            storedStart = now;
            meta.put(START_KEY, storedStart);
        }
        this.start = storedStart;
        Long last = events.lastKey();
        this.highWater = Math.max(Math.max(storedStart, last == null ? 0L : last), now);
    }

    private long nowTs() {
        return clock.instant().getEpochSecond() << 32;
    }

    long highWater() {
        return highWater;
    }

    long start() {
        return start;
    }

    long size() {
        return events.sizeAsLong();
    }

    /** Appends {@code record} under the next cluster time and wakes waiting readers. */
    long append(Document record) {
        synchronized (lock) {
            long ts = Math.max(highWater + 1, nowTs() | 1L);
            record.put(WALL, clock.instant());
            events.put(ts, record);
            while (events.sizeAsLong() > maxEvents) {
                Long first = events.firstKey();
                events.remove(first);
                start = first;
                meta.put(START_KEY, first);
            }
            highWater = ts;
            lock.notifyAll();
            return ts;
        }
    }

    /**
     * Throws {@code ChangeStreamHistoryLost} (code 286) when changes after {@code position} may have
     * been trimmed or were never recorded (a token older than this data directory).
     */
    void checkResumable(long position) {
        if (position < start) {
            throw new MongoServerError(286, "ChangeStreamHistoryLost",
                "Resume of change stream was not possible, as the resume point may no longer be in the oplog. "
                    + "(requested " + ResumeTokens.describe(position) + ", history starts at " + ResumeTokens.describe(start) + ")");
        }
    }

    /** Records with a key in {@code (after, upTo]}, oldest first, at most {@code limit} of them. */
    List<Map.Entry<Long, Document>> read(long after, long upTo, int limit) {
        List<Map.Entry<Long, Document>> result = new ArrayList<>();
        if (after >= upTo || after == Long.MAX_VALUE) {
            return result;
        }
        Cursor<Long, Document> cursor = events.cursor(after + 1);
        while (cursor.hasNext() && result.size() < limit) {
            Long key = cursor.next();
            if (key > upTo) {
                break;
            }
            result.add(Map.entry(key, cursor.getValue()));
        }
        return result;
    }

    /** Waits up to {@code millis} for a record newer than {@code after}; returns the high water. */
    long awaitAfter(long after, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        synchronized (lock) {
            while (highWater <= after) {
                long remaining = (deadline - System.nanoTime()) / 1_000_000L;
                if (remaining <= 0) {
                    break;
                }
                lock.wait(remaining);
            }
            return highWater;
        }
    }
}
