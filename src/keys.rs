//! The storage key layout, the same in the S3 bucket and in a local run's directory. Pure.
//!
//! ```text
//! drop/<name>.txt                              stories dropped by users (the trigger prefix)
//! backgrounds/<id>.mp4                         the background library
//! jobs/<job_id>/story.txt                      the cleaned story: title line, blank line, body
//! narration/<cache>/audio.wav                  joined narration audio (cache: text+engine+voice+rate)
//! narration/<cache>/marks.json                 speech marks per part, as the engine returned them
//! tmp/<job_id>/chunks/<plan>/<index>.h264      rendered chunks (expire after a day)
//! tmp/<job_id>/video.mp4                       the merged video before publishing (expires)
//! out/<job_id>/video.mp4, .srt, .vtt, .jpg     published outputs
//! ```

/// Prefix users drop stories under; uploads there start jobs.
pub const DROP_PREFIX: &str = "drop/";
/// Prefix of the background library.
pub const BACKGROUNDS_PREFIX: &str = "backgrounds/";
/// Prefix of intermediate objects, expired by a lifecycle rule.
pub const TMP_PREFIX: &str = "tmp/";
/// Prefix of published outputs.
pub const OUT_PREFIX: &str = "out/";
/// Prefix of the narration cache.
pub const NARRATION_PREFIX: &str = "narration/";

pub fn story(job_id: &str) -> String {
    format!("jobs/{job_id}/story.txt")
}

pub fn narration_audio(cache: &str) -> String {
    format!("{NARRATION_PREFIX}{cache}/audio.wav")
}

pub fn narration_marks(cache: &str) -> String {
    format!("{NARRATION_PREFIX}{cache}/marks.json")
}

/// A chunk of one plan: a changed plan (other options, other narration) never reuses it.
pub fn chunk(job_id: &str, plan: &str, index: u32) -> String {
    format!("{TMP_PREFIX}{job_id}/chunks/{plan}/{index:05}.h264")
}

/// Everything intermediate of a job.
pub fn job_tmp(job_id: &str) -> String {
    format!("{TMP_PREFIX}{job_id}")
}

pub fn merged(job_id: &str) -> String {
    format!("{TMP_PREFIX}{job_id}/video.mp4")
}

/// Published outputs of a job: `(video, srt, vtt, thumbnail)`.
pub fn outputs(job_id: &str) -> (String, String, String, String) {
    let base = format!("{OUT_PREFIX}{job_id}");
    (
        format!("{base}/video.mp4"),
        format!("{base}/captions.srt"),
        format!("{base}/captions.vtt"),
        format!("{base}/thumbnail.jpg"),
    )
}

/// A short stable hash (SHA-256, first 16 hex digits) of the parts, each length-prefixed so
/// `("ab","c")` and `("a","bc")` differ.
pub fn hash(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A job id safe as a key segment and an execution name (<= 80 chars of `[A-Za-z0-9-_]`).
pub fn job_id(slug_from: &str, hash: &str) -> String {
    let mut slug = String::new();
    for c in slug_from.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("job-{hash}")
    } else {
        format!("{slug}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(chunk("j", "p", 7), "tmp/j/chunks/p/00007.h264");
        assert_eq!(outputs("j").0, "out/j/video.mp4");
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_eq!(hash(&[b"x"]).len(), 16);
        assert_eq!(
            job_id("My AITA story: the cake!", "00ff"),
            "my-aita-story-the-cake-00ff"
        );
        assert_eq!(job_id("  ✨ ", "ab"), "job-ab");
        assert!(job_id(&"x".repeat(500), "ab").len() <= 80);
    }
}
