//! storyreel: turns a story into a finished short vertical video.
//!
//! The render path: [`plan`] decides frames and chunks, [`background`] decodes and fits the
//! footage, [`compose`] blends captions, [`encode`] turns frames into H.264 chunks, and
//! [`merge`] joins the chunks with the narration into one MP4. [`pipeline`] runs them all
//! on one machine.

pub mod background;
pub mod cloud;
pub mod compose;
pub mod cost;
pub mod encode;
pub mod frame;
pub mod jobs;
pub mod keys;
pub mod llm;
pub mod merge;
pub mod narration;
pub mod pipeline;
pub mod plan;
pub mod publishing;
pub mod render;
pub mod sample;
pub mod scale;
pub mod steps;
pub mod store;
pub mod workflow;
