//! What one video costs on AWS, term by term: Polly characters, Lambda GB-seconds per function
//! and requests, Step Functions state transitions, S3 requests, storage and transfer, DynamoDB
//! request units, LLM tokens.
//!
//! Pure: every function here computes from a price table ([`Prices`], [`US_EAST_1`]), stated
//! assumptions ([`Assumptions`], [`STATED`]), render times measured on a real machine
//! ([`Measured`], committed as `src/cost/measured.json`; [`measure`] re-measures) and the facts
//! of one video ([`VideoFacts`]). The state transitions and the Lambda requests come from walking
//! the deployed definition ([`transitions`]). `storyreel cost` prints an estimate for a planned
//! video; `publish` stores one on every finished job, from the job's own chunk render times.

pub mod measure;
pub mod transitions;

use serde::{Deserialize, Serialize};

pub use transitions::{TransitionError, Transitions};

/// Unit prices in USD, one region and architecture, and the date they were taken as current.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    pub region: &'static str,
    pub architecture: &'static str,
    /// When these prices were read as the current ones (YYYY-MM-DD).
    pub as_of: &'static str,
    /// Lambda duration, per GB-second (first pricing tier).
    pub lambda_gb_second: f64,
    /// Lambda requests, per request.
    pub lambda_request: f64,
    /// Lambda ephemeral storage above the free 512 MB, per GB-second.
    pub lambda_ephemeral_gb_second: f64,
    /// Step Functions standard workflows, per state transition.
    pub sfn_transition: f64,
    /// Amazon Polly, per character, by engine.
    pub polly_standard_char: f64,
    pub polly_neural_char: f64,
    pub polly_long_form_char: f64,
    pub polly_generative_char: f64,
    /// S3 Standard PUT, COPY, POST, LIST requests, per request.
    pub s3_put_request: f64,
    /// S3 Standard GET, HEAD and other requests, per request.
    pub s3_get_request: f64,
    /// S3 Standard storage, per GB-month (first 50 TB).
    pub s3_gb_month: f64,
    /// Data transfer out of AWS to the internet, per GB (first 10 TB after the free 100 GB).
    pub transfer_out_gb: f64,
    /// DynamoDB on-demand, per write request unit and per read request unit.
    pub dynamodb_write_unit: f64,
    pub dynamodb_read_unit: f64,
    /// The LLM, per input and per output token.
    pub llm_model: &'static str,
    pub llm_input_token: f64,
    pub llm_output_token: f64,
    /// EventBridge: events that AWS services (the S3 upload) put on the default bus.
    pub eventbridge_service_event: f64,
}

/// us-east-1, x86_64, on-demand, without free tiers.
pub const US_EAST_1: Prices = Prices {
    region: "us-east-1",
    architecture: "x86_64",
    as_of: "2026-11-26",
    lambda_gb_second: 0.000_016_666_7,
    lambda_request: 0.20 / 1e6,
    lambda_ephemeral_gb_second: 0.000_000_030_9,
    sfn_transition: 0.025 / 1e3,
    polly_standard_char: 4.0 / 1e6,
    polly_neural_char: 16.0 / 1e6,
    polly_long_form_char: 100.0 / 1e6,
    polly_generative_char: 30.0 / 1e6,
    s3_put_request: 0.005 / 1e3,
    s3_get_request: 0.0004 / 1e3,
    s3_gb_month: 0.023,
    transfer_out_gb: 0.09,
    dynamodb_write_unit: 0.625 / 1e6,
    dynamodb_read_unit: 0.125 / 1e6,
    llm_model: "gpt-4o-mini",
    llm_input_token: 0.15 / 1e6,
    llm_output_token: 0.60 / 1e6,
    eventbridge_service_event: 0.0,
};

/// The pricing page of each service.
pub fn price_source(service: &str) -> &'static str {
    match service {
        "Polly" => "https://aws.amazon.com/polly/pricing/",
        "Lambda" => "https://aws.amazon.com/lambda/pricing/",
        "Step Functions" => "https://aws.amazon.com/step-functions/pricing/",
        "S3" => "https://aws.amazon.com/s3/pricing/",
        "DynamoDB" => "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "OpenAI" => "https://openai.com/api/pricing/",
        "EventBridge" => "https://aws.amazon.com/eventbridge/pricing/",
        _ => "",
    }
}

/// Lambda gives one vCPU per this many MB of memory.
pub const MB_PER_VCPU: f64 = 1769.0;

/// Lambda's memory range (MB).
pub const LAMBDA_MEMORY_MB: std::ops::RangeInclusive<u32> = 128..=10_240;

/// Memory (MB) of render-chunk recommended in BENCHMARKS.md ("Render chunk on Lambda-sized
/// CPUs") and assumed when nothing else is said.
pub const DEFAULT_RENDER_MEMORY_MB: u32 = 3538;

/// Video lengths an estimate accepts (s): the plan's narration limit.
pub const SECONDS_RANGE: std::ops::RangeInclusive<u32> =
    1..=(crate::plan::MAX_AUDIO_MS / 1000) as u32;

/// Memory (MB) and ephemeral storage (MB) of each function, as `template.yaml` deploys them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSizes {
    pub story_mb: u32,
    pub speech_mb: u32,
    pub marks_mb: u32,
    pub render_chunk_mb: u32,
    pub merge_mb: u32,
    pub publish_mb: u32,
    pub render_chunk_disk_mb: u32,
    pub merge_disk_mb: u32,
}

/// The template's sizes with render-chunk at [`DEFAULT_RENDER_MEMORY_MB`].
pub const TEMPLATE_SIZES: FunctionSizes = FunctionSizes {
    story_mb: 512,
    speech_mb: 1024,
    marks_mb: 512,
    render_chunk_mb: DEFAULT_RENDER_MEMORY_MB,
    merge_mb: 2048,
    publish_mb: 1769,
    render_chunk_disk_mb: 2048,
    merge_disk_mb: 4096,
};

/// Which engine narrates, as far as the bill goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpeechEngine {
    Espeak,
    PollyStandard,
    PollyNeural,
    PollyLongForm,
    PollyGenerative,
}

impl SpeechEngine {
    /// Every engine, cheapest first.
    pub const ALL: [SpeechEngine; 5] = [
        Self::Espeak,
        Self::PollyStandard,
        Self::PollyNeural,
        Self::PollyGenerative,
        Self::PollyLongForm,
    ];

    /// The name a job's `voice.engine` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Espeak => "espeak",
            Self::PollyStandard => "polly-standard",
            Self::PollyNeural => "polly-neural",
            Self::PollyLongForm => "polly-long-form",
            Self::PollyGenerative => "polly-generative",
        }
    }

    /// A job's engine name (`polly` is neural, as in the narration step).
    pub fn parse(name: &str) -> Result<Self, CostError> {
        match name {
            "polly" => Ok(Self::PollyNeural),
            _ => Self::ALL
                .into_iter()
                .find(|e| e.name() == name)
                .ok_or_else(|| CostError::Engine(name.to_string())),
        }
    }

    /// Price per character.
    pub fn char_price(self, p: &Prices) -> f64 {
        match self {
            Self::Espeak => 0.0,
            Self::PollyStandard => p.polly_standard_char,
            Self::PollyNeural => p.polly_neural_char,
            Self::PollyLongForm => p.polly_long_form_char,
            Self::PollyGenerative => p.polly_generative_char,
        }
    }

    pub fn is_polly(self) -> bool {
        self != Self::Espeak
    }
}

/// Why an estimate cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("seconds {0} is out of range (expected {min}..={max})", min = SECONDS_RANGE.start(), max = SECONDS_RANGE.end())]
    Seconds(u32),
    #[error("chunk frames {0} is out of range (expected {min}..={max})", min = crate::plan::CHUNK_FRAMES_RANGE.start(), max = crate::plan::CHUNK_FRAMES_RANGE.end())]
    ChunkFrames(u32),
    #[error("chunks {value} is out of range for {frames} frames (expected {min}..={max}: {min_frames}..={max_frames} frames a chunk)", min_frames = crate::plan::CHUNK_FRAMES_RANGE.start(), max_frames = crate::plan::CHUNK_FRAMES_RANGE.end())]
    Chunks {
        value: u32,
        frames: u64,
        min: u32,
        max: u32,
    },
    #[error("memory {0} MB is out of range (expected {min}..={max})", min = LAMBDA_MEMORY_MB.start(), max = LAMBDA_MEMORY_MB.end())]
    Memory(u32),
    #[error(
        "unknown speech engine {0:?} (expected espeak, polly, polly-standard, polly-neural, polly-long-form or polly-generative)"
    )]
    Engine(String),
    #[error("measured chunk times: {0}")]
    Measured(String),
    #[error("state machine definition")]
    Definition(#[from] TransitionError),
}

/// Everything an estimate takes as given rather than measured. Each value says why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Assumptions {
    /// Narration speed: a typical neural voice reads about 160 words a minute (the story
    /// writer's budget uses the same rate).
    pub words_per_minute: f64,
    /// Characters Polly bills per word, the space included (English prose averages ~4.8
    /// letters a word, plus punctuation and the space).
    pub chars_per_word: f64,
    /// Seconds of the story step: reading or writing a few objects and the job record.
    pub story_s: f64,
    /// Seconds of the story step when an LLM writes the story (it waits for the stream).
    pub story_prompt_s: f64,
    /// Speech and marks steps with Polly: fixed seconds plus seconds per character.
    pub polly_speech_s: f64,
    pub polly_speech_s_per_char: f64,
    pub polly_marks_s: f64,
    pub polly_marks_s_per_char: f64,
    /// Speech and marks with espeak-ng in the Lambda: seconds per second of narration
    /// (espeak-ng synthesises ~20x faster than real time on a fraction of a vCPU).
    pub espeak_s_per_audio_s: f64,
    /// Per-invocation seconds outside the measured work: cold start of a Rust bootstrap,
    /// reading the story, marks and background index, the job record update.
    pub invocation_s: f64,
    /// Lambda to S3 throughput (bytes/s) for chunk uploads, merge downloads and the copy.
    pub s3_bytes_per_s: f64,
    /// Narration audio bitrate in the MP4 (AAC, bits/s).
    pub audio_bits_per_s: f64,
    /// Narration cache WAV: 16-bit mono at Polly's 24 kHz (bytes/s).
    pub wav_bytes_per_s: f64,
    /// Captions (SRT, WebVTT), thumbnail and story text next to a video (bytes).
    pub sidecar_bytes: f64,
    /// Days the narration cache keeps an entry (lifecycle rule) and tmp/ objects live at most.
    pub cache_days: f64,
    pub tmp_days: f64,
    /// Months a published video is kept (the cost shown is per month kept).
    pub output_months: f64,
    /// Downloads of the video through its link (data transfer out).
    pub downloads: f64,
    /// DynamoDB write units: a job record is under 1 KB until publish; the cost estimate and
    /// the outputs with a pre-signed link make the last two writes about 4 KB and 6 KB.
    pub dynamo_cost_write_units: f64,
    pub dynamo_done_write_units: f64,
    /// A prompt's story step scans the job table for recent titles: ~120 records (a channel
    /// every 6 hours, records kept 30 days) of ~6 KB, eventually consistent (0.5 unit a 4 KB).
    pub dynamo_scan_read_units: f64,
    /// LLM input tokens per attempt: system prompt (~2,100 characters) and user prompt with up
    /// to 20 recent titles; output tokens: the story (~4 characters a token) plus JSON framing.
    pub llm_input_tokens: f64,
    pub llm_chars_per_token: f64,
    pub llm_output_overhead_tokens: f64,
    /// Answers asked for (the writer asks again when the length misses by more than 20%).
    pub llm_attempts: f64,
    /// GETs of the background for the thumbnail (one picture: its GOP's blocks).
    pub thumbnail_gets: f64,
    /// Multipart uploads above this size (bytes) and their part size.
    pub multipart_threshold: f64,
    pub multipart_part: f64,
}

/// The stated assumptions (see each field).
pub const STATED: Assumptions = Assumptions {
    words_per_minute: 160.0,
    chars_per_word: 5.8,
    story_s: 0.3,
    story_prompt_s: 8.0,
    polly_speech_s: 0.5,
    polly_speech_s_per_char: 0.002,
    polly_marks_s: 0.3,
    polly_marks_s_per_char: 0.0005,
    espeak_s_per_audio_s: 0.05,
    invocation_s: 0.3,
    s3_bytes_per_s: 80e6,
    audio_bits_per_s: 128_000.0,
    wav_bytes_per_s: 48_000.0,
    sidecar_bytes: 200_000.0,
    cache_days: 30.0,
    tmp_days: 1.0,
    output_months: 1.0,
    downloads: 1.0,
    dynamo_cost_write_units: 4.0,
    dynamo_done_write_units: 6.0,
    dynamo_scan_read_units: 90.0,
    llm_input_tokens: 900.0,
    llm_chars_per_token: 4.0,
    llm_output_overhead_tokens: 20.0,
    llm_attempts: 1.0,
    thumbnail_gets: 3.0,
    multipart_threshold: (64u64 << 20) as f64,
    multipart_part: (16u64 << 20) as f64,
};

/// Narration characters of a story read in `seconds` (per request type: speech and marks each
/// send them once): `seconds × words_per_minute / 60 × chars_per_word`.
pub fn narration_chars(seconds: f64, a: &Assumptions) -> u64 {
    (seconds * a.words_per_minute / 60.0 * a.chars_per_word).round() as u64
}

/// One render of a chunk, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// x264 threads, and the CPUs the render was pinned to.
    pub threads: u32,
    pub cpus: u32,
    /// The plan's frames per chunk, this chunk's index and frames.
    pub chunk_frames: u32,
    pub index: u32,
    pub frames: u64,
    /// Opening the background (index) until the chunk is written.
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub paint_cpu_ms: f64,
    /// Of which opening the background (reading its index).
    pub open_ms: f64,
    pub bytes: u64,
    /// 1 MiB ranged GETs the S3 reader would make: opening, then rendering.
    pub gets_open: u64,
    pub gets_render: u64,
}

/// A straight line `intercept + slope × frames`, fitted by least squares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub intercept: f64,
    pub slope: f64,
}

impl Fit {
    /// Least squares over `(x, y)`; a single x gives a line through the origin.
    pub fn of(points: &[(f64, f64)]) -> Fit {
        let n = points.len() as f64;
        if points.is_empty() {
            return Fit::default();
        }
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx <= f64::EPSILON {
            return Fit {
                intercept: 0.0,
                slope: if mx > 0.0 { my / mx } else { 0.0 },
            };
        }
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let slope = sxy / sxx;
        Fit {
            intercept: my - slope * mx,
            slope,
        }
    }

    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// The render of one x264 thread count, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadRun {
    pub threads: u32,
    pub cpus: u32,
    /// Wall ms of an invocation's render: `overhead + frames × per_frame` (fitted over the
    /// fastest render of each chunk; the overhead is opening the background, seeking to a
    /// keyframe and decoding up to the chunk's first frame, starting and flushing x264).
    pub wall: Fit,
    /// CPU ms per frame (all threads) and of the painting thread alone.
    pub cpu_ms_per_frame: f64,
    pub paint_cpu_ms_per_frame: f64,
    /// Mean ms opening the background.
    pub open_ms: f64,
    /// Fastest wall ms of a full chunk of the default size.
    pub chunk_ms: f64,
}

/// Render times measured on a real machine (`storyreel cost --measure`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub machine: String,
    pub date: String,
    pub command: String,
    pub background: String,
    /// Anything that qualifies the numbers (machine load).
    pub note: String,
    pub preset: String,
    pub crf: f32,
    pub chunk_frames: u32,
    pub runs: Vec<ThreadRun>,
    /// Encoded chunk bytes per frame.
    pub bytes_per_frame: f64,
    /// 1 MiB GETs to open the background, and to render a chunk (fitted in frames).
    pub gets_open: f64,
    pub gets_render: Fit,
    /// Merge (index chunks, AAC, mux) CPU ms per video frame, on one thread.
    pub merge_ms_per_frame: f64,
    /// The thumbnail: one background picture, title card, JPEG (ms).
    pub thumbnail_ms: f64,
    pub samples: Vec<Sample>,
}

/// The numbers committed with the code: `src/cost/measured.json`.
pub const MEASURED_JSON: &str = include_str!("cost/measured.json");

impl Measured {
    /// The committed measurement.
    pub fn embedded() -> Result<Measured, CostError> {
        Self::from_json(MEASURED_JSON)
    }

    pub fn from_json(text: &str) -> Result<Measured, CostError> {
        let m: Measured =
            serde_json::from_str(text).map_err(|e| CostError::Measured(e.to_string()))?;
        for t in [1, 2] {
            if m.run(t).is_none() {
                return Err(CostError::Measured(format!(
                    "no run with {t} x264 thread(s) (expected threads 1 and 2)"
                )));
            }
        }
        Ok(m)
    }

    pub fn run(&self, threads: u32) -> Option<&ThreadRun> {
        self.runs
            .iter()
            .find(|r| r.threads == threads && r.wall.slope > 0.0)
    }

    /// Wall seconds to render `frames` frames in one invocation with `memory_mb` of Lambda
    /// memory (`memory_mb / 1769` vCPUs; x264 gets a thread per visible core).
    ///
    /// Measured at 1 vCPU (x264 1 thread, pinned to one CPU) and 2 vCPUs (2 threads, two
    /// CPUs). Below one vCPU the time grows with 1/vCPU (CPU-bound; Lambda scales the CPU
    /// share with memory); between one and two, frames per second interpolate linearly;
    /// beyond two (not measured) x264's part is taken to scale with vCPUs while the painting
    /// thread (decode, scale, captions) cannot go faster than one core.
    pub fn render_seconds(&self, frames: u64, memory_mb: u32) -> f64 {
        let (Some(r1), Some(r2)) = (self.run(1), self.run(2)) else {
            return 0.0;
        };
        let v = f64::from(memory_mb.max(1)) / MB_PER_VCPU;
        let n = frames as f64;
        let ms = if v <= 1.0 {
            r1.wall.at(n) / v
        } else if v <= 2.0 {
            let rate = |r: &ThreadRun| n / r.wall.at(n).max(1e-9);
            n / (rate(r1) + (v - 1.0) * (rate(r2) - rate(r1)))
        } else {
            let per_frame = (r2.wall.slope * 2.0 / v).max(r2.paint_cpu_ms_per_frame);
            r2.wall.intercept * 2.0 / v + n * per_frame
        };
        ms.max(0.0) / 1000.0
    }

    /// Background GETs of one chunk's invocation (opening it and rendering).
    pub fn chunk_gets(&self, frames: u64) -> f64 {
        self.gets_open + self.gets_render.at(frames as f64).max(0.0)
    }
}

/// How the video is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// Frames per chunk (the job's `render.chunk_frames`).
    Frames(u32),
    /// This many chunks of equal size (the last may be shorter).
    Count(u32),
}

/// One render-chunk invocation: its frames, billed seconds and whether they were measured on
/// the job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkTime {
    pub frames: u64,
    pub seconds: f64,
    pub measured: bool,
}

/// The facts of one video that its cost depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFacts {
    /// Narration length (ms) and video frames.
    pub audio_ms: u64,
    pub frames: u64,
    /// Characters of the narrated text (title and body); speech and marks each send them.
    pub narration_chars: u64,
    pub engine: SpeechEngine,
    pub chunks: Vec<ChunkTime>,
    pub sizes: FunctionSizes,
    /// The story was written by the LLM.
    pub prompt: bool,
    /// The published MP4 (bytes).
    pub video_bytes: u64,
    /// Footage from the library is read from S3 (false: the generated background).
    pub background: bool,
    /// What the definition makes one execution do.
    pub transitions: Transitions,
    /// Where the narration characters and chunk times come from, for the notes.
    pub basis: String,
}

/// A video to estimate before it exists (`storyreel cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedVideo {
    /// Seconds of narration.
    pub seconds: u32,
    pub engine: SpeechEngine,
    pub chunking: Chunking,
    /// render-chunk's memory (MB).
    pub memory_mb: u32,
    /// The story is written by the LLM from a prompt.
    pub prompt: bool,
}

impl Default for PlannedVideo {
    fn default() -> Self {
        PlannedVideo {
            seconds: 60,
            engine: SpeechEngine::PollyNeural,
            chunking: Chunking::Frames(crate::plan::DEFAULT_CHUNK_FRAMES),
            memory_mb: DEFAULT_RENDER_MEMORY_MB,
            prompt: false,
        }
    }
}

impl VideoFacts {
    /// The facts of a planned video: frames and chunks as the plan makes them, characters at
    /// the stated reading rate, chunk times from the measured render, the output size from the
    /// measured bytes per frame, transitions from `definition`.
    pub fn planned(
        v: &PlannedVideo,
        measured: &Measured,
        definition: &str,
        a: &Assumptions,
    ) -> Result<VideoFacts, CostError> {
        let PlannedVideo {
            seconds,
            engine,
            chunking,
            memory_mb,
            prompt,
        } = *v;
        if !SECONDS_RANGE.contains(&seconds) {
            return Err(CostError::Seconds(seconds));
        }
        if !LAMBDA_MEMORY_MB.contains(&memory_mb) {
            return Err(CostError::Memory(memory_mb));
        }
        let audio_ms = u64::from(seconds) * 1000;
        let frames = crate::plan::frame_count(audio_ms);
        let chunk_frames = chunk_frames_for(frames, chunking)?;
        let ranges = crate::plan::chunk_ranges(frames, chunk_frames);
        let chunks = ranges
            .iter()
            .map(|r| {
                let n = r.end - r.start;
                ChunkTime {
                    frames: n,
                    seconds: modelled_chunk_seconds(n, memory_mb, measured, a),
                    measured: false,
                }
            })
            .collect();
        let video_bytes = frames as f64 * measured.bytes_per_frame
            + f64::from(seconds) * a.audio_bits_per_s / 8.0;
        let chars = narration_chars(f64::from(seconds), a);
        Ok(VideoFacts {
            audio_ms,
            frames,
            narration_chars: chars,
            engine,
            chunks,
            sizes: FunctionSizes {
                render_chunk_mb: memory_mb,
                ..TEMPLATE_SIZES
            },
            prompt,
            video_bytes: video_bytes.round() as u64,
            background: true,
            transitions: transitions::count_json(definition, ranges.len() as u64)?,
            basis: format!(
                "narration {chars} characters = {seconds} s x {} words/min / 60 x {} characters/word; \
                 chunk times from the render measured {} on {}",
                a.words_per_minute, a.chars_per_word, measured.date, measured.machine
            ),
        })
    }
}

/// What a finished job knows about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts<'a> {
    /// The job's `voice.engine`.
    pub engine: &'a str,
    /// The narrated text, and the byte ranges of it sent to the engine (one per request;
    /// empty: the whole text).
    pub text: &'a str,
    pub parts: &'a [(usize, usize)],
    pub audio_ms: u64,
    /// Frames of each chunk, in order.
    pub chunk_frames: &'a [u64],
    /// Render-chunk milliseconds recorded on the job, by chunk index.
    pub chunk_ms: &'a std::collections::BTreeMap<u32, u64>,
    pub render_memory_mb: u32,
    pub prompt: bool,
    pub video_bytes: u64,
    pub background: bool,
}

impl VideoFacts {
    /// The facts of a finished job: its own narration characters, engine, chunk count and
    /// chunk times (a chunk without a recorded time, e.g. rendered by an older version, is
    /// modelled from the measurement).
    pub fn for_job(
        j: &JobFacts<'_>,
        measured: &Measured,
        definition: &str,
        a: &Assumptions,
    ) -> Result<VideoFacts, CostError> {
        let engine = SpeechEngine::parse(j.engine)?;
        if !LAMBDA_MEMORY_MB.contains(&j.render_memory_mb) {
            return Err(CostError::Memory(j.render_memory_mb));
        }
        let chars = if j.parts.is_empty() {
            j.text.chars().count()
        } else {
            j.parts
                .iter()
                .map(|&(start, end)| j.text.get(start..end).map_or(0, |t| t.chars().count()))
                .sum()
        } as u64;
        let chunks: Vec<ChunkTime> = j
            .chunk_frames
            .iter()
            .enumerate()
            .map(|(i, &frames)| {
                let recorded = u32::try_from(i).ok().and_then(|i| j.chunk_ms.get(&i));
                match recorded {
                    Some(&ms) => ChunkTime {
                        frames,
                        seconds: ms as f64 / 1000.0,
                        measured: true,
                    },
                    None => ChunkTime {
                        frames,
                        seconds: modelled_chunk_seconds(frames, j.render_memory_mb, measured, a),
                        measured: false,
                    },
                }
            })
            .collect();
        let recorded = chunks.iter().filter(|c| c.measured).count();
        Ok(VideoFacts {
            audio_ms: j.audio_ms,
            frames: j.chunk_frames.iter().sum(),
            narration_chars: chars,
            engine,
            sizes: FunctionSizes {
                render_chunk_mb: j.render_memory_mb,
                ..TEMPLATE_SIZES
            },
            prompt: j.prompt,
            video_bytes: j.video_bytes,
            background: j.background,
            transitions: transitions::count_json(definition, chunks.len() as u64)?,
            basis: format!(
                "this job: {chars} narration characters ({}), {} chunks ({recorded} with render                  times recorded by render-chunk), video {} bytes",
                engine.name(),
                chunks.len(),
                j.video_bytes
            ),
            chunks,
        })
    }
}

/// Frames per chunk for a chunking of `frames` frames, checked.
pub fn chunk_frames_for(frames: u64, chunking: Chunking) -> Result<u32, CostError> {
    let range = crate::plan::CHUNK_FRAMES_RANGE;
    match chunking {
        Chunking::Frames(f) if range.contains(&f) => Ok(f),
        Chunking::Frames(f) => Err(CostError::ChunkFrames(f)),
        Chunking::Count(n) => {
            let bound =
                |f: u32| u32::try_from(frames.div_ceil(u64::from(f)).max(1)).unwrap_or(u32::MAX);
            // At least 8 frames a chunk, at most 18,000.
            let max =
                u32::try_from((frames / u64::from(*range.start())).max(1)).unwrap_or(u32::MAX);
            let min = bound(*range.end());
            let err = CostError::Chunks {
                value: n,
                frames,
                min,
                max,
            };
            if n < min || n > max {
                return Err(err);
            }
            u32::try_from(frames.div_ceil(u64::from(n)))
                .ok()
                .filter(|f| range.contains(f))
                .ok_or(err)
        }
    }
}

/// Billed seconds of a render-chunk invocation that was not measured on its job: the measured
/// render plus the stated invocation overhead and the chunk's upload.
pub fn modelled_chunk_seconds(
    frames: u64,
    memory_mb: u32,
    measured: &Measured,
    a: &Assumptions,
) -> f64 {
    measured.render_seconds(frames, memory_mb)
        + a.invocation_s
        + frames as f64 * measured.bytes_per_frame / a.s3_bytes_per_s
}

/// One line of an estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTerm {
    /// `Polly`, `Lambda`, `Step Functions`, `S3`, `DynamoDB`, `OpenAI`, `EventBridge`.
    pub service: String,
    /// What is counted, e.g. `render-chunk GB-seconds`.
    pub item: String,
    pub quantity: f64,
    /// The unit of the quantity, e.g. `GB-s`.
    pub unit: String,
    /// The price of `per` units.
    pub price_usd: f64,
    pub per: u64,
    pub usd: f64,
    /// How the quantity was found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
}

/// What one video costs, with every term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub total_usd: f64,
    pub region: String,
    /// The date the prices were taken as current.
    pub prices_as_of: String,
    pub terms: Vec<CostTerm>,
    /// How the facts were found (measured or stated).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
}

impl CostEstimate {
    /// The sum of one service's terms.
    pub fn service_usd(&self, service: &str) -> f64 {
        self.terms
            .iter()
            .filter(|t| t.service == service)
            .map(|t| t.usd)
            .sum()
    }
}

/// Seconds billed for a Lambda run (1 ms granularity).
fn billed(seconds: f64) -> f64 {
    (seconds.max(0.0) * 1000.0).ceil() / 1000.0
}

/// The estimate of one video.
pub fn estimate(p: &Prices, a: &Assumptions, m: &Measured, f: &VideoFacts) -> CostEstimate {
    let mut terms = Vec::new();
    let mut term = |service: &str,
                    item: String,
                    quantity: f64,
                    unit: &str,
                    price: f64,
                    per: u64,
                    basis: String| {
        let price_usd = price * per as f64;
        terms.push(CostTerm {
            service: service.into(),
            item,
            quantity,
            unit: unit.into(),
            price_usd,
            per,
            usd: quantity * price,
            basis,
        });
    };
    let n = f.chunks.len() as u64;
    let audio_s = f.audio_ms as f64 / 1000.0;
    let chars = f.narration_chars as f64;
    let engine = f.engine;

    // Polly: the speech step and the marks step each send the whole text.
    let polly_chars = if engine.is_polly() { chars } else { 0.0 };
    let polly_basis = if engine.is_polly() {
        format!("{} characters of narration", f.narration_chars)
    } else {
        "espeak-ng: no Polly requests".into()
    };
    for what in ["speech", "marks"] {
        term(
            "Polly",
            format!("{what} characters ({})", engine.name()),
            polly_chars,
            "characters",
            engine.char_price(p),
            1_000_000,
            polly_basis.clone(),
        );
    }

    // Lambda, per function.
    let sizes = &f.sizes;
    let story_s = if f.prompt {
        a.story_prompt_s
    } else {
        a.story_s
    };
    let (speech_s, marks_s) = if engine.is_polly() {
        (
            a.polly_speech_s + chars * a.polly_speech_s_per_char,
            a.polly_marks_s + chars * a.polly_marks_s_per_char,
        )
    } else {
        (
            a.invocation_s + audio_s * a.espeak_s_per_audio_s,
            a.invocation_s + audio_s * a.espeak_s_per_audio_s,
        )
    };
    let video = f.video_bytes as f64;
    let merge_s = a.invocation_s
        + f.frames as f64 * m.merge_ms_per_frame / 1000.0
        + 2.0 * video / a.s3_bytes_per_s;
    let publish_s = a.invocation_s + m.thumbnail_ms / 1000.0 + video / a.s3_bytes_per_s;
    let render_s: f64 = f.chunks.iter().map(|c| billed(c.seconds)).sum();
    let measured_chunks = f.chunks.iter().filter(|c| c.measured).count();
    let chunk_basis = if measured_chunks == f.chunks.len() && n > 0 {
        format!("{n} chunks, render times measured on this job")
    } else {
        let longest = f.chunks.iter().map(|c| c.frames).max().unwrap_or(0);
        format!(
            "{n} chunks ({measured_chunks} measured on the job); a {longest}-frame chunk: {:.1} s \
             = render measured {} ({:.2} vCPU at {} MB) + {:.1} s invocation + upload",
            modelled_chunk_seconds(longest, sizes.render_chunk_mb, m, a),
            m.date,
            f64::from(sizes.render_chunk_mb) / MB_PER_VCPU,
            sizes.render_chunk_mb,
            a.invocation_s
        )
    };
    let lambda = [
        (
            "story",
            sizes.story_mb,
            billed(story_s),
            if f.prompt {
                "stated: waits for the LLM's stream".to_string()
            } else {
                "stated: a few S3 and DynamoDB calls".to_string()
            },
        ),
        (
            "speech",
            sizes.speech_mb,
            billed(speech_s),
            format!(
                "stated: {speech_s:.2} s for {} characters",
                f.narration_chars
            ),
        ),
        (
            "marks",
            sizes.marks_mb,
            billed(marks_s),
            format!(
                "stated: {marks_s:.2} s for {} characters",
                f.narration_chars
            ),
        ),
        ("render-chunk", sizes.render_chunk_mb, render_s, chunk_basis),
        (
            "merge",
            sizes.merge_mb,
            billed(merge_s),
            format!(
                "{:.2} s: mux measured ({:.3} ms/frame) + chunk download and upload at {:.0} MB/s",
                merge_s,
                m.merge_ms_per_frame,
                a.s3_bytes_per_s / 1e6
            ),
        ),
        (
            "publish",
            sizes.publish_mb,
            billed(publish_s),
            format!(
                "{:.2} s: thumbnail measured ({:.0} ms) + copy + sidecars",
                publish_s, m.thumbnail_ms
            ),
        ),
    ];
    for (name, mb, seconds, basis) in &lambda {
        let gb = f64::from(*mb) / 1024.0;
        term(
            "Lambda",
            format!("{name} GB-seconds ({mb} MB x {seconds:.3} s)"),
            gb * seconds,
            "GB-s",
            p.lambda_gb_second,
            1,
            basis.clone(),
        );
    }
    let disk_gb_s = (f64::from(sizes.render_chunk_disk_mb.saturating_sub(512)) * render_s
        + f64::from(sizes.merge_disk_mb.saturating_sub(512)) * billed(merge_s))
        / 1024.0;
    term(
        "Lambda",
        "ephemeral storage above 512 MB (render-chunk, merge)".into(),
        disk_gb_s,
        "GB-s",
        p.lambda_ephemeral_gb_second,
        1,
        format!(
            "{} MB and {} MB of /tmp during their runs",
            sizes.render_chunk_disk_mb, sizes.merge_disk_mb
        ),
    );
    let t = &f.transitions;
    term(
        "Lambda",
        "requests".into(),
        t.tasks() as f64,
        "requests",
        p.lambda_request,
        1_000_000,
        format!("Task states invoked by the definition ({n} chunks)"),
    );

    // Step Functions.
    term(
        "Step Functions",
        "state transitions (standard workflow)".into(),
        t.states as f64,
        "transitions",
        p.sfn_transition,
        1_000,
        format!(
            "states entered in statemachine/video.asl.json with {n} Map iterations; each retry \
             adds one (at most {} more)",
            t.max_retries
        ),
    );

    // S3 requests, step by step (see the keys in ARCHITECTURE.md).
    let bg_open = if f.background {
        1.0 + m.gets_open.ceil()
    } else {
        0.0
    };
    let prepare_gets = 2.0 + bg_open; // story, marks, background HEAD + index
    let chunk_gets: f64 = f
        .chunks
        .iter()
        .map(|c| {
            let bg = if f.background {
                m.gets_render.at(c.frames as f64).max(0.0).ceil()
            } else {
                0.0
            };
            prepare_gets + 1.0 + bg // + HEAD of the chunk key
        })
        .sum();
    let video_puts = if video >= a.multipart_threshold {
        2.0 + (video / a.multipart_part).ceil()
    } else {
        1.0
    };
    let story_puts = 1.0; // the cleaned story
    let narration_puts = 2.0 + 1.0; // audio.wav, audio.json; marks.json
    let narration_gets = 2.0 + 2.0; // story + HEAD in each
    let merge_gets = prepare_gets + 1.0 + n as f64 + 1.0; // HEAD video, chunks, WAV
    let publish_gets =
        prepare_gets + if f.background { a.thumbnail_gets } else { 0.0 } + a.downloads;
    let publish_puts = 3.0 + 1.0 + 1.0; // SRT, VTT, JPEG; COPY of the video; LIST of tmp/
    let puts = story_puts + narration_puts + n as f64 + video_puts + publish_puts;
    let gets = narration_gets + chunk_gets + merge_gets + publish_gets;
    term(
        "S3",
        "PUT, COPY, LIST requests".into(),
        puts,
        "requests",
        p.s3_put_request,
        1_000,
        format!(
            "story 1, narration 3, chunks {n}, video {video_puts}, publish 5 (3 sidecars, copy, list); deletes are free"
        ),
    );
    term(
        "S3",
        "GET, HEAD requests".into(),
        gets,
        "requests",
        p.s3_get_request,
        1_000,
        format!(
            "narration 4, chunks {chunk_gets:.0} ({} background 1 MiB ranges as measured), merge {merge_gets:.0}, publish {publish_gets:.0} (with {} download)",
            if f.background { "with" } else { "no" },
            a.downloads
        ),
    );
    const GB: f64 = (1u64 << 30) as f64;
    let outputs_gb = (video + a.sidecar_bytes) / GB;
    term(
        "S3",
        format!(
            "storage of the outputs ({:.0} MB)",
            (video + a.sidecar_bytes) / 1e6
        ),
        outputs_gb * a.output_months,
        "GB-month",
        p.s3_gb_month,
        1,
        format!(
            "video {:.1} MB + captions and thumbnail, per month kept",
            video / 1e6
        ),
    );
    let tmp_gb = 2.0 * video / GB; // chunks + merged video
    term(
        "S3",
        "storage of tmp/ (chunks, merged video)".into(),
        tmp_gb * a.tmp_days * 12.0 / 365.0,
        "GB-month",
        p.s3_gb_month,
        1,
        format!(
            "{:.0} MB for at most {} day (publish deletes it; a lifecycle rule expires leftovers)",
            2.0 * video / 1e6,
            a.tmp_days
        ),
    );
    let cache_bytes = audio_s * a.wav_bytes_per_s;
    term(
        "S3",
        "storage of the narration cache".into(),
        cache_bytes / GB * a.cache_days * 12.0 / 365.0,
        "GB-month",
        p.s3_gb_month,
        1,
        format!(
            "{:.1} MB WAV for {} days (lifecycle rule)",
            cache_bytes / 1e6,
            a.cache_days
        ),
    );
    term(
        "S3",
        "data transfer out (video downloads)".into(),
        a.downloads * video / GB,
        "GB",
        p.transfer_out_gb,
        1,
        format!(
            "{} download of {:.1} MB; AWS's first 100 GB a month are free",
            a.downloads,
            video / 1e6
        ),
    );

    // DynamoDB: one item per job.
    let small_writes = 1.0 + 2.0 + n as f64 + 1.0 + 1.0; // create, speech 2, chunks, merge, publish
    let wru = small_writes + a.dynamo_cost_write_units + a.dynamo_done_write_units;
    term(
        "DynamoDB",
        "write request units (on-demand)".into(),
        wru,
        "WRU",
        p.dynamodb_write_unit,
        1_000_000,
        format!(
            "{small_writes:.0} writes under 1 KB + the cost ({}) and outputs ({}) writes",
            a.dynamo_cost_write_units, a.dynamo_done_write_units
        ),
    );
    let rru = 1.0
        + if f.prompt {
            a.dynamo_scan_read_units
        } else {
            0.0
        };
    term(
        "DynamoDB",
        "read request units (on-demand)".into(),
        rru,
        "RRU",
        p.dynamodb_read_unit,
        1_000_000,
        if f.prompt {
            "publish reads the record; the prompt's recent titles scan the table".into()
        } else {
            "publish reads the record".into()
        },
    );

    // The LLM.
    let (tin, tout) = if f.prompt {
        (
            a.llm_input_tokens * a.llm_attempts,
            (chars / a.llm_chars_per_token + a.llm_output_overhead_tokens) * a.llm_attempts,
        )
    } else {
        (0.0, 0.0)
    };
    let llm_basis = if f.prompt {
        format!(
            "{} attempt(s); story of {} characters at {} per token",
            a.llm_attempts, f.narration_chars, a.llm_chars_per_token
        )
    } else {
        "the story is given: no LLM".into()
    };
    term(
        "OpenAI",
        format!("{} input tokens", p.llm_model),
        tin,
        "tokens",
        p.llm_input_token,
        1_000_000,
        llm_basis.clone(),
    );
    term(
        "OpenAI",
        format!("{} output tokens", p.llm_model),
        tout,
        "tokens",
        p.llm_output_token,
        1_000_000,
        llm_basis,
    );
    term(
        "EventBridge",
        "events (S3 upload under drop/, channel schedule)".into(),
        1.0,
        "events",
        p.eventbridge_service_event,
        1_000_000,
        "AWS service events on the default bus and scheduled rules are free".into(),
    );

    let total_usd = terms.iter().map(|t| t.usd).sum();
    CostEstimate {
        total_usd,
        region: format!("{} {}", p.region, p.architecture),
        prices_as_of: p.as_of.into(),
        terms,
        basis: f.basis.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Measured {
        Measured::embedded().unwrap()
    }

    fn planned(seconds: u32, engine: SpeechEngine, prompt: bool) -> VideoFacts {
        let v = PlannedVideo {
            seconds,
            engine,
            prompt,
            ..PlannedVideo::default()
        };
        VideoFacts::planned(&v, &measured(), crate::definition::DEFINITION, &STATED).unwrap()
    }

    fn usd(seconds: u32, engine: SpeechEngine, prompt: bool) -> CostEstimate {
        estimate(
            &US_EAST_1,
            &STATED,
            &measured(),
            &planned(seconds, engine, prompt),
        )
    }

    #[test]
    fn the_committed_measurement_parses_and_is_plausible() {
        let m = measured();
        let r1 = m.run(1).unwrap();
        let r2 = m.run(2).unwrap();
        // One 1080x1920 frame takes tens of ms on one core; two cores are faster.
        assert!(r1.wall.slope > 5.0 && r1.wall.slope < 500.0, "{r1:?}");
        assert!(r2.wall.slope < r1.wall.slope, "{r2:?}");
        assert!(m.bytes_per_frame > 1000.0);
        assert!(!m.machine.is_empty() && !m.date.is_empty() && !m.command.is_empty());
    }

    #[test]
    fn a_60_second_video_has_the_expected_terms() {
        let f = planned(60, SpeechEngine::PollyNeural, false);
        assert_eq!(f.frames, 1815);
        assert_eq!(f.chunks.len(), 7);
        assert_eq!(f.narration_chars, 928);
        assert_eq!(f.transitions.states, 17);
        let e = estimate(&US_EAST_1, &STATED, &measured(), &f);
        // Polly bills the speech and the marks requests.
        let polly = e.service_usd("Polly");
        assert!((polly - 2.0 * 928.0 * 16.0 / 1e6).abs() < 1e-12, "{polly}");
        let sfn = e.service_usd("Step Functions");
        assert!((sfn - 17.0 * 0.000_025).abs() < 1e-12);
        let requests = e.terms.iter().find(|t| t.item == "requests").unwrap();
        assert_eq!(requests.quantity, 12.0);
        let sum: f64 = e.terms.iter().map(|t| t.usd).sum();
        assert!((sum - e.total_usd).abs() < 1e-12);
        assert!(e.terms.iter().all(|t| t.usd >= 0.0 && t.usd.is_finite()));
        assert!(e.terms.iter().all(|t| !price_source(&t.service).is_empty()));
    }

    #[test]
    fn longer_videos_and_dearer_voices_cost_more() {
        let one = usd(60, SpeechEngine::PollyNeural, false);
        let two = usd(120, SpeechEngine::PollyNeural, false);
        assert!(
            two.total_usd > 1.8 * one.total_usd,
            "{} vs {}",
            two.total_usd,
            one.total_usd
        );
        assert!(two.service_usd("Lambda") > 1.8 * one.service_usd("Lambda"));
        let order: Vec<f64> = [
            SpeechEngine::Espeak,
            SpeechEngine::PollyStandard,
            SpeechEngine::PollyNeural,
            SpeechEngine::PollyGenerative,
            SpeechEngine::PollyLongForm,
        ]
        .into_iter()
        .map(|e| usd(60, e, false).total_usd)
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert_eq!(
            usd(60, SpeechEngine::Espeak, false).service_usd("Polly"),
            0.0
        );
        let prompt = usd(60, SpeechEngine::PollyNeural, true);
        assert!(prompt.service_usd("OpenAI") > 0.0);
        assert!(prompt.total_usd > one.total_usd);
        assert_eq!(one.service_usd("OpenAI"), 0.0);
    }

    #[test]
    fn render_time_follows_the_cpu_lambda_gives() {
        let m = measured();
        let at = |mb| m.render_seconds(300, mb);
        // Half a vCPU takes twice as long as one; more memory is never slower.
        assert!((at(885) - at(1769) * 1769.0 / 885.0).abs() < 1e-9);
        let sizes = [885, 1769, 2600, 3538, 5307, 10240];
        assert!(
            sizes.windows(2).all(|w| at(w[0]) >= at(w[1])),
            "{:?}",
            sizes.map(at)
        );
        // Measured points are reproduced.
        let r2 = m.run(2).unwrap();
        assert!((at(3538) - r2.wall.at(300.0) / 1000.0).abs() < 1e-9);
        // More chunks cost more requests and transitions but render the same frames.
        let few = usd(60, SpeechEngine::PollyNeural, false);
        let many = estimate(
            &US_EAST_1,
            &STATED,
            &m,
            &VideoFacts::planned(
                &PlannedVideo {
                    chunking: Chunking::Count(20),
                    ..PlannedVideo::default()
                },
                &m,
                crate::definition::DEFINITION,
                &STATED,
            )
            .unwrap(),
        );
        assert!(many.service_usd("Step Functions") > few.service_usd("Step Functions"));
        assert!(many.service_usd("S3") > few.service_usd("S3"));
    }

    #[test]
    fn out_of_range_inputs_say_the_range() {
        let m = measured();
        let plan = |seconds, chunking, memory_mb| {
            let v = PlannedVideo {
                seconds,
                chunking,
                memory_mb,
                ..PlannedVideo::default()
            };
            VideoFacts::planned(&v, &m, crate::definition::DEFINITION, &STATED)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let frames = Chunking::Frames(300);
        assert_eq!(
            plan(0, frames, 3538).unwrap_err(),
            "seconds 0 is out of range (expected 1..=1800)"
        );
        assert_eq!(
            plan(60, frames, 64).unwrap_err(),
            "memory 64 MB is out of range (expected 128..=10240)"
        );
        assert_eq!(
            plan(60, Chunking::Frames(4), 3538).unwrap_err(),
            "chunk frames 4 is out of range (expected 8..=18000)"
        );
        assert_eq!(
            plan(60, Chunking::Count(0), 3538).unwrap_err(),
            "chunks 0 is out of range for 1815 frames (expected 1..=226: 8..=18000 frames a chunk)"
        );
        assert!(plan(60, Chunking::Count(226), 3538).is_ok());
        assert!(plan(1800, Chunking::Count(4), 3538).is_ok());
        assert_eq!(
            plan(1800, Chunking::Count(3), 3538).unwrap_err(),
            "chunks 3 is out of range for 54015 frames (expected 4..=6751: 8..=18000 frames a chunk)"
        );
        assert_eq!(
            SpeechEngine::parse("polly-fast").unwrap_err().to_string(),
            "unknown speech engine \"polly-fast\" (expected espeak, polly, polly-standard, polly-neural, polly-long-form or polly-generative)"
        );
        assert_eq!(
            SpeechEngine::parse("polly").unwrap(),
            SpeechEngine::PollyNeural
        );
    }

    #[test]
    fn a_job_is_estimated_from_its_own_times() {
        let m = measured();
        let text = "Title\n\nBody of the story, réal characters.";
        let parts = [(0, text.len())];
        fn facts<'a>(
            text: &'a str,
            parts: &'a [(usize, usize)],
            chunk_ms: &'a std::collections::BTreeMap<u32, u64>,
        ) -> JobFacts<'a> {
            JobFacts {
                engine: "polly",
                text,
                parts,
                audio_ms: 19_500,
                chunk_frames: &[300, 300],
                chunk_ms,
                render_memory_mb: 1769,
                prompt: false,
                video_bytes: 10_000_000,
                background: true,
            }
        }
        let fast = [(0, 20_000)].into();
        let recorded = VideoFacts::for_job(
            &facts(text, &parts, &fast),
            &m,
            crate::definition::DEFINITION,
            &STATED,
        )
        .unwrap();
        assert_eq!(recorded.narration_chars, text.chars().count() as u64);
        assert_eq!(recorded.engine, SpeechEngine::PollyNeural);
        assert_eq!(recorded.chunks[0].seconds, 20.0);
        assert!(recorded.chunks[0].measured && !recorded.chunks[1].measured);
        assert_eq!(recorded.transitions.states, 12);
        // A slower recorded chunk costs more than a faster one.
        let slow = [(0, 40_000)].into();
        let slower = VideoFacts::for_job(
            &facts(text, &parts, &slow),
            &m,
            crate::definition::DEFINITION,
            &STATED,
        )
        .unwrap();
        let e = |f| estimate(&US_EAST_1, &STATED, &m, f);
        assert!(e(&slower).service_usd("Lambda") > e(&recorded).service_usd("Lambda"));
    }

    #[test]
    fn narration_characters_follow_the_stated_rate() {
        assert_eq!(narration_chars(60.0, &STATED), 928);
        assert_eq!(narration_chars(120.0, &STATED), 1856);
    }

    #[test]
    fn fits_recover_lines() {
        let f = Fit::of(&[(15.0, 700.0), (60.0, 2050.0), (300.0, 9250.0)]);
        assert!(
            (f.slope - 30.0).abs() < 0.5 && (f.intercept - 250.0).abs() < 60.0,
            "{f:?}"
        );
        assert_eq!(Fit::of(&[(300.0, 900.0)]).slope, 3.0);
    }

    #[test]
    fn function_sizes_match_the_template() {
        let template = include_str!("../template.yaml");
        // The `MemorySize:` of a resource (or of `Globals: Function:`), a plain number.
        let memory_of = |name: &str| -> Option<u32> {
            let mut lines = template.lines().skip_while(|l| *l != format!("  {name}:"));
            lines.next()?;
            lines
                .take_while(|l| l.is_empty() || l.starts_with("   "))
                .find_map(|l| l.trim().strip_prefix("MemorySize:"))?
                .trim()
                .parse()
                .ok()
        };
        let global = memory_of("Function").unwrap_or(0);
        let size = |f: &str| memory_of(f).unwrap_or(global);
        assert_eq!(global, 512);
        assert_eq!(size("StoryFunction"), TEMPLATE_SIZES.story_mb);
        assert_eq!(size("SpeechFunction"), TEMPLATE_SIZES.speech_mb);
        assert_eq!(size("MarksFunction"), TEMPLATE_SIZES.marks_mb);
        assert_eq!(size("MergeFunction"), TEMPLATE_SIZES.merge_mb);
        assert_eq!(size("PublishFunction"), TEMPLATE_SIZES.publish_mb);
    }
}
