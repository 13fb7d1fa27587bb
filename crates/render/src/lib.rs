//! storyreel's render engine: a story's narration, marks and background become H.264 chunks
//! and one MP4, on any machine, with no AWS, async runtime or job store in sight.
//!
//! [`plan`] decides frames and chunks, [`background`] decodes and fits the footage,
//! [`compose`] blends captions, [`encode`] turns frames into H.264 chunks, and [`merge`] joins
//! the chunks with the narration into one MP4. [`pipeline`] runs them all on one machine.

pub mod background;
pub mod compose;
pub mod encode;
pub mod frame;
pub mod merge;
pub mod pipeline;
pub mod plan;
pub mod prepare;
pub mod render;
pub mod sample;
pub mod scale;
