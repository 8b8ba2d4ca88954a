// Package audit keeps the gateway's tamper-evident, hash-chained, append-only
// record of every exchange, and verifies, queries and replays it.
//
// # Writing
//
// [Open] starts a [Log] over a [Store]: [OpenSegments] for the segment log
// the gateway keeps beside its data file ([SegmentDir]; preallocated segment
// files of CRC-checked frames, one fdatasync per commit, a torn last commit
// left out at open), [OpenBolt] or [NewBoltStore] for a log in bbolt (as
// gateways kept it before; [MoveFromBolt] moves one), [NewMemStore] for
// tests. [OpenReader] opens whichever a data file has, for reading.
// [Log.Append] returns once the record is durable ([Durability]); a single
// writer goroutine chains concurrent appends and commits them together
// (group commit). An error wrapping [ErrWriteFailed] means the
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
