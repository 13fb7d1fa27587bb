//! storyreel: turns a story into a finished short vertical video.
//!
//! The render engine is its own crate (`storyreel-render`, re-exported below under the paths
//! it always had); this crate is the workflow around it: the [`steps`], the stores ([`store`],
//! [`jobs`]) and their AWS twins ([`cloud`]), narration, stories, publishing, cost, and the
//! local executor ([`workflow`]).

pub mod cloud;
pub mod cost;
pub mod definition;
pub mod jobs;
pub mod keys;
pub mod llm;
pub mod narration;
pub mod publishing;
pub mod steps;
pub mod store;
pub mod workflow;

// The render engine (crates/render), under the paths the workflow has always used.
pub use storyreel_render::{
    background, compose, encode, frame, merge, pipeline, plan, prepare, render, sample, scale,
};
