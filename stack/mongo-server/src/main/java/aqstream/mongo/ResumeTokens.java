package aqstream.mongo;

import java.util.Locale;

import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * Resume tokens in the shape MongoDB 4.2+ uses: {@code {_data: "<hex>"}} whose first byte is the
 * KeyString type tag 0x82 (130, "timestamp") followed by the 8-byte big-endian cluster time.
 *
 * <p>Clients treat the token as opaque, except that Debezium decodes that leading timestamp
 * ({@code io.debezium.connector.mongodb.ResumeTokens#getTimestamp}). A real token carries more
 * after the timestamp (UUID, document key); ours stops there, since one cluster time names exactly
 * one change here.
 */
final class ResumeTokens {

    private static final String TIMESTAMP_TAG = "82";

    private ResumeTokens() {
    }

    static Document token(long clusterTime) {
        return new Document("_data", TIMESTAMP_TAG + String.format(Locale.ROOT, "%016X", clusterTime));
    }

    static long clusterTime(Object token) {
        if (!(token instanceof Document document) || !(document.get("_data") instanceof String data)) {
            throw new MongoServerError(2, "BadValue", "resume token must be a document with a string '_data': " + token);
        }
        if (data.length() < 18 || !data.regionMatches(true, 0, TIMESTAMP_TAG, 0, 2)) {
            throw new MongoServerError(2, "BadValue", "unrecognised resume token (not issued by this server): " + data);
        }
        try {
            return Long.parseUnsignedLong(data.substring(2, 18), 16);
        } catch (NumberFormatException e) {
            throw new MongoServerError(2, "BadValue", "malformed resume token: " + data);
        }
    }

    static String describe(long clusterTime) {
        BsonTimestamp ts = new BsonTimestamp(clusterTime);
        return "Timestamp(" + ts.getTime() + ", " + ts.getInc() + ")";
    }
}
