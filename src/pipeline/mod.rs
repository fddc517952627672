//! Layer 4: between producers and the writer. Producers encode points into an accumulator
//! (one lock per batch of points); a full accumulator becomes a `Chunk` on a bounded queue of
//! batches; the writer takes chunks off the queue and takes partial ones on its interval.
//! Under the same lock, `dedup` gives each line a timestamp no earlier line of its series used.

pub mod chunk;
pub mod dedup;
pub mod queue;

pub use chunk::{Chunk, ChunkKind, Hold, Loc};
pub use dedup::{Dedup, DedupConfig};
pub use queue::{Accumulator, Queue};
