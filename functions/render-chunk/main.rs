//! The `render-chunk` Lambda: one frame range, encoded with x264.
use storyreel::steps::{RenderChunkInput, render_chunk};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("render-chunk", |env, input: RenderChunkInput| async move {
        render_chunk(
            input,
            env.store.as_ref(),
            env.jobs.as_ref(),
            env.threads,
            &env.scratch,
        )
        .await
    })
    .await
}
