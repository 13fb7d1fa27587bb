//! The `story` Lambda: a job request or trigger event becomes a job with a cleaned story.
use storyreel::steps::{StoryInput, story};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("story", |env, input: StoryInput| async move {
        story(
            input,
            env.store.as_ref(),
            env.jobs.as_ref(),
            env.llm.as_deref(),
        )
        .await
    })
    .await
}
