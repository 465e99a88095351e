package aqstream.mongo;

import org.h2.mvstore.MVMap;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.ArrayFilters;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * An {@link H2Collection} that reports each document it stores, changes or removes, with the images
 * before and after. These are the library's per-document storage hooks, so every write path reports
 * here: insert, update (one or many), upsert, replace, delete, and findAndModify (which the library's
 * own oplog does not record at all).
 */
final class ChangeCapturingCollection extends H2Collection {

    /** The update document of the update running on this thread (set by the write entry points). */
    private static final ThreadLocal<Document> CURRENT_UPDATE = new ThreadLocal<>();

    private final ChangeRecorder recorder;

    ChangeCapturingCollection(MongoDatabase database, String collectionName, CollectionOptions options,
                              MVMap<Object, Document> dataMap, MVMap<String, Object> metaMap,
                              CursorRegistry cursorRegistry, ChangeRecorder recorder) {
        super(database, collectionName, options, dataMap, metaMap, cursorRegistry);
        this.recorder = recorder;
    }

    private boolean captured() {
        return ChangeRecorder.isCaptured(getDatabaseName(), getCollectionName());
    }

    @Override
    public synchronized Document updateDocuments(Document selector, Document updateQuery, ArrayFilters arrayFilters,
                                                 boolean isMulti, boolean isUpsert, Oplog oplog) {
        Document previous = CURRENT_UPDATE.get();
        CURRENT_UPDATE.set(updateQuery);
        try {
            return super.updateDocuments(selector, updateQuery, arrayFilters, isMulti, isUpsert, oplog);
        } finally {
            CURRENT_UPDATE.set(previous);
        }
    }

    @Override
    public synchronized Document findAndModify(Document query) {
        Document previous = CURRENT_UPDATE.get();
        CURRENT_UPDATE.set(query.get("update") instanceof Document update ? update : null);
        try {
            return super.findAndModify(query);
        } finally {
            CURRENT_UPDATE.set(previous);
        }
    }

    @Override
    protected Object addDocumentInternal(Document document) {
        Object position = super.addDocumentInternal(document);
        if (captured()) {
            recorder.inserted(getDatabaseName(), getCollectionName(), document.cloneDeeply());
        }
        return position;
    }

    @Override
    protected void handleUpdate(Object position, Document oldDocument, Document newDocument) {
        super.handleUpdate(position, oldDocument, newDocument);
        if (captured()) {
            recorder.updated(getDatabaseName(), getCollectionName(), oldDocument.cloneDeeply(), newDocument.cloneDeeply(),
                isReplacement(CURRENT_UPDATE.get()));
        }
    }

    @Override
    protected void removeDocument(Object position) {
        Document before = captured() ? getDocument(position) : null;
        super.removeDocument(position);
        if (before != null) {
            recorder.deleted(getDatabaseName(), getCollectionName(), before.cloneDeeply());
        }
    }

    /** A replacement document has no top-level {@code $} operators (MongoDB then emits "replace"). */
    private static boolean isReplacement(Document update) {
        if (update == null || update.isEmpty()) {
            return false;
        }
        return update.keySet().stream().noneMatch(key -> key.startsWith("$"));
    }
}
