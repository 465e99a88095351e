package aqstream.mongo;

import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;

/** An {@link H2Database} whose collections report each document change to the backend's change log. */
final class ChangeCapturingDatabase extends H2Database {

    /*
     * The MVStore map names under which H2Database keeps a collection's documents and metadata
     * (H2Database.DATABASES_PREFIX is package-private; "meta." is private). They are the on-disk
     * format, so they must match the library's: ReplicaSetBackendTest#plainLibraryReadsOurDataDirectory
     * checks that a data directory written here opens with the plain H2Backend.
     */
    private static final String DATA_MAP_PREFIX = "databases.";
    private static final String META_MAP_PREFIX = "meta.";

    /** What collections need: the store their maps live in, and where they report changes. */
    record Context(MVStore mvStore, ChangeRecorder recorder) {
    }

    /*
     * H2Database's constructor already opens collections (through openOrCreateCollection below),
     * before this subclass's fields are assigned; during that call the context comes from here.
     */
    private static final ThreadLocal<Context> CONSTRUCTING = new ThreadLocal<>();

    private final Context context;

    private ChangeCapturingDatabase(String databaseName, Context context, CursorRegistry cursorRegistry) {
        super(databaseName, context.mvStore(), cursorRegistry);
        this.context = context;
    }

    static ChangeCapturingDatabase open(String databaseName, Context context, CursorRegistry cursorRegistry) {
        Context outer = CONSTRUCTING.get();
        CONSTRUCTING.set(context);
        try {
            return new ChangeCapturingDatabase(databaseName, context, cursorRegistry);
        } finally {
            if (outer == null) {
                CONSTRUCTING.remove();
            } else {
                CONSTRUCTING.set(outer);
            }
        }
    }

    private Context context() {
        return context != null ? context : CONSTRUCTING.get();
    }

    @Override
    protected MongoCollection<Object> openOrCreateCollection(String collectionName, CollectionOptions options) {
        String fullName = getFullCollectionNamespace(collectionName);
        Context ctx = context();
        MVMap<Object, Document> dataMap = ctx.mvStore().openMap(DATA_MAP_PREFIX + fullName);
        MVMap<String, Object> metaMap = ctx.mvStore().openMap(META_MAP_PREFIX + fullName);
        return new ChangeCapturingCollection(this, collectionName, options, dataMap, metaMap, cursorRegistry, ctx.recorder());
    }
}
