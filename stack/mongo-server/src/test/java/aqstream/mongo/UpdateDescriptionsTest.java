package aqstream.mongo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

import de.bwaldvogel.mongo.bson.Document;

class UpdateDescriptionsTest {

    private static Document doc(Object... kv) {
        Document d = new Document();
        for (int i = 0; i < kv.length; i += 2) {
            d.put((String) kv[i], kv[i + 1]);
        }
        return d;
    }

    @Test
    void setAndUnsetTopLevelFields() {
        Document d = UpdateDescriptions.of(doc("_id", 1, "a", 1, "b", 2), doc("_id", 1, "a", 5, "c", 3));
        assertEquals(doc("a", 5, "c", 3), d.get("updatedFields"));
        assertEquals(List.of("b"), d.get("removedFields"));
        assertEquals(List.of(), d.get("truncatedArrays"));
    }

    @Test
    void nestedChangesAreDottedPaths() {
        Document d = UpdateDescriptions.of(doc("_id", 1, "n", doc("x", 1, "y", 2)), doc("_id", 1, "n", doc("x", 5)));
        assertEquals(doc("n.x", 5), d.get("updatedFields"));
        assertEquals(List.of("n.y"), d.get("removedFields"));
    }

    @Test
    void typeChangeIsAnUpdate() {
        Document d = UpdateDescriptions.of(doc("_id", 1, "a", 1), doc("_id", 1, "a", 1L));
        assertEquals(doc("a", 1L), d.get("updatedFields"));
    }

    @Test
    void arraysShrunkAtTheEndAreTruncated() {
        Document d = UpdateDescriptions.of(doc("_id", 1, "a", List.of(1, 2, 3)), doc("_id", 1, "a", List.of(1)));
        assertEquals(List.of(doc("field", "a", "newSize", 1)), d.get("truncatedArrays"));
        assertEquals(doc(), d.get("updatedFields"));
    }

    @Test
    void otherArrayChangesReportTheWholeArray() {
        Document d = UpdateDescriptions.of(doc("_id", 1, "a", List.of(1, 2)), doc("_id", 1, "a", List.of(1, 2, 3)));
        assertEquals(doc("a", List.of(1, 2, 3)), d.get("updatedFields"));
    }

    @Test
    void unchangedDocumentHasEmptyDescription() {
        Document d = UpdateDescriptions.of(doc("_id", 1, "a", doc("b", 1)), doc("_id", 1, "a", doc("b", 1)));
        assertEquals(doc(), d.get("updatedFields"));
        assertEquals(List.of(), d.get("removedFields"));
    }
}
