// Preloaded into Azurite (node --require) by testbed.azurite.azurite(fast_lookups=True).
// Two of Azurite's costs that grow with what it holds and that Azure's service does not have;
// the answers stay the same, only sooner.
"use strict";
const root = "/opt/azurite/lib/node_modules/azurite";
const Loki = require(`${root}/node_modules/lokijs`);

// 1. A table entity is found by {RowKey, PartitionKey}: LokiJS uses the binary index of the
// first key only and filters the rest row by row. Every job row's RowKey is "job", so each
// point read or write of one scanned every job row of the table; PartitionKey first, each
// upsert of a run's index entries (10,000 in one partition) scanned that partition. The key
// with fewer rows first: the same conjunction, found by its index.
const findOne = Loki.Collection.prototype.findOne;
const rows = (coll, key, value) => {
  const index = coll.binaryIndices[key];
  if (!index || index.dirty) {
    return Infinity;
  }
  const [lo, hi] = coll.calculateRange("$eq", key, value);
  return hi - lo + 1;
};
Loki.Collection.prototype.findOne = function (query) {
  if (query && typeof query === "object" && "PartitionKey" in query && "RowKey" in query) {
    const { PartitionKey, RowKey, ...rest } = query;
    query =
      rows(this, "PartitionKey", PartitionKey) <= rows(this, "RowKey", RowKey)
        ? { PartitionKey, RowKey, ...rest }
        : { RowKey, PartitionKey, ...rest };
  }
  return findOne.call(this, query);
};

// 2. Every receive, delete and update of a message first sweeps the queue's expired messages,
// a scan of every message of the account; at most once a second per queue here (a message
// lives 7 days unless told otherwise, so one a second late is none).
const store = require(`${root}/dist/src/queue/persistence/LokiQueueMetadataStore`).default;
const sweep = store.prototype.clearExpiredMessages;
const swept = new Map();
store.prototype.clearExpiredMessages = function (account, queue, context) {
  const key = `${account}/${queue}`;
  const now = Date.now();
  if (now - (swept.get(key) || 0) < 1000) {
    return Promise.resolve();
  }
  swept.set(key, now);
  return sweep.call(this, account, queue, context);
};

// 3. The blob and queue services' garbage collection deletes unreferenced extents (the data of
// deleted blobs and messages) one at a time, and each removal from the extents collection
// marks its index dirty: the next removal sorts every extent again. With a 10,000-batch run's
// blobs that blocked Node for 90 s, every request waiting. One removal of them all here.
const extents = require(`${root}/dist/src/common/persistence/MemoryExtentStore`).default;
extents.prototype.deleteExtents = async function (ids) {
  const all = Array.from(ids);
  for (const id of all) {
    this.chunks.delete(this.categoryName, id);
  }
  const meta = this.metadataStore;
  meta.db.getCollection(meta.EXTENTS_COLLECTION).findAndRemove({ id: { $in: all } });
  return all.length;
};
