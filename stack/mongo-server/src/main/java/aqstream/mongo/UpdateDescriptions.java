package aqstream.mongo;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import de.bwaldvogel.mongo.bson.Document;

/**
 * Computes a change event's {@code updateDescription} from the document before and after an update.
 *
 * <p>mongo-java-server records only the update command in its oplog, so the description is
 * recomputed here from the two images: a field added or changed is in {@code updatedFields} (a
 * nested change as a dotted path, as MongoDB reports {@code $set: {"a.b": 1}}), a field gone is in
 * {@code removedFields}, and an array that only lost elements at its end is in
 * {@code truncatedArrays}. Any other array change reports the whole new array, which is what MongoDB
 * 4.4 does for most array updates; 5.0+ sometimes reports single elements ({@code "a.3"}) instead.
 */
final class UpdateDescriptions {

    private UpdateDescriptions() {
    }

    static Document of(Document before, Document after) {
        Document updated = new Document();
        List<String> removed = new ArrayList<>();
        List<Document> truncated = new ArrayList<>();
        diff("", before, after, updated, removed, truncated);
        return new Document("updatedFields", updated)
            .append("removedFields", removed)
            .append("truncatedArrays", truncated);
    }

    private static void diff(String prefix, Document before, Document after,
                             Document updated, List<String> removed, List<Document> truncated) {
        for (String key : before.keySet()) {
            if (!after.containsKey(key)) {
                removed.add(prefix + key);
            }
        }
        for (Map.Entry<String, Object> entry : after.entrySet()) {
            String path = prefix + entry.getKey();
            Object newValue = entry.getValue();
            if (!before.containsKey(entry.getKey())) {
                updated.put(path, newValue);
                continue;
            }
            Object oldValue = before.get(entry.getKey());
            if (sameValue(oldValue, newValue)) {
                continue;
            }
            if (oldValue instanceof Document oldDoc && newValue instanceof Document newDoc
                && !oldDoc.isEmpty() && !newDoc.isEmpty()) {
                diff(path + ".", oldDoc, newDoc, updated, removed, truncated);
            } else if (oldValue instanceof List<?> oldList && newValue instanceof List<?> newList
                && newList.size() < oldList.size() && sameValue(oldList.subList(0, newList.size()), newList)) {
                truncated.add(new Document("field", path).append("newSize", newList.size()));
            } else {
                updated.put(path, newValue);
            }
        }
    }

    /** Equal and of the same BSON types (an int 1 replaced by a long 1 is a change). */
    private static boolean sameValue(Object a, Object b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (a.getClass() != b.getClass() && !(a instanceof List && b instanceof List)) {
            return false;
        }
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            if (la.size() != lb.size()) {
                return false;
            }
            for (int i = 0; i < la.size(); i++) {
                if (!sameValue(la.get(i), lb.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Document da && b instanceof Document db) {
            if (!new ArrayList<>(da.keySet()).equals(new ArrayList<>(db.keySet()))) {
                return false;
            }
            for (String key : da.keySet()) {
                if (!sameValue(da.get(key), db.get(key))) {
                    return false;
                }
            }
            return true;
        }
        return Objects.equals(a, b);
    }
}
