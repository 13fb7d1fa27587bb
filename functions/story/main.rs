//! The `story` Lambda: a job request or trigger event becomes a job with a cleaned story.
//! A job that does not set `render.max_concurrency` gets the stack's
//! `STORYREEL_RENDER_MAX_CONCURRENCY` (the template's `RenderMaxConcurrency`), which the Map
//! state reads from the job.
use storyreel::steps::{StoryInput, story};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let default_concurrency = std::env::var("STORYREEL_RENDER_MAX_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(0);
    storyreel_lambda::run("story", move |env, input: StoryInput| async move {
        let mut out = story(
            input,
            env.store.as_ref(),
            env.jobs.as_ref(),
            env.llm.as_deref(),
            &env.publishers.drop_publish,
        )
        .await?;
        if out.job.render.max_concurrency == 0 {
            out.job.render.max_concurrency = default_concurrency;
        }
        Ok(out)
    })
    .await
}
