// Package audit keeps the gateway's tamper-evident, hash-chained, append-only
// record of every exchange, and verifies, queries and replays it.
//
// # Writing
//
// [Open] starts a [Log] over a [Store] ([OpenBolt] for a file of its own,
// [NewBoltStore] for a bucket named "audit" in the gateway's bbolt database,
// [NewMemStore] for tests). [Log.Append] returns once the record is durable;
// a single writer goroutine chains concurrent appends and commits them in one
// transaction (group commit). An error wrapping [ErrWriteFailed] means the
// record is not written and the request must be refused (fail closed). With
// an Ed25519 signer the log stores signed [Checkpoint]s of the head every N
// records and at [Log.Close]. [Log.Prune] applies retention, leaving an
// anchor record so the rest of the chain still verifies.
//
// # Reading
//
// [Verify] walks the chain and names the first broken record ([Break]).
// [Query], [Get], [Lookup] and [Session] read records; [Log.Follow] streams
// new ones. [WriteTranscript], [WriteTable], [WriteJSONL] and [WriteCSV]
// render them. The hash and stored encoding are specified on [Record]; the
// signed bytes on [Checkpoint.SignedBytes].
//
// # Configuration
//
// [Config] is the `audit:` section of the gateway YAML.
package audit
