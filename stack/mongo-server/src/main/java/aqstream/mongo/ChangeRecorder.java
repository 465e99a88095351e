package aqstream.mongo;

import de.bwaldvogel.mongo.bson.Document;

/** Receives every change to a user collection, after it is applied, with the document images. */
interface ChangeRecorder {

    void inserted(String db, String coll, Document document);

    /** {@code replacement} when the update was a whole-document replacement rather than operators. */
    void updated(String db, String coll, Document before, Document after, boolean replacement);

    void deleted(String db, String coll, Document before);

    void dropped(String db, String coll);

    /** Whether changes to this namespace are change-stream events at all (not system or internal ones). */
    static boolean isCaptured(String db, String coll) {
        return !(db.equals("admin") || db.equals("local") || db.equals("config")
            || coll.startsWith("system.") || coll.contains("$"));
    }
}
