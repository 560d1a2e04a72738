//! `sana`: the headless front end of the engine, for scripts, render farms and reference checks.
//! Machine output goes to stdout, progress and logs to stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use sana::backend::{cpu::Cpu, cuda::Cuda, Backend, Tensor};
use sana::engine::cache::{default_cache_dir, CacheKey, DiskStore, LatentCache};
use sana::engine::dit::HostTensor;
use sana::engine::dit::{DitInput, DitInputFile, SanaVideoTransformer, Timesteps};
use sana::engine::inspect::inspect;
use sana::engine::pipeline::base::Captions;
use sana::engine::pipeline::frames::{crop_video, decode_to_size, encode_video, DecodedVideo};
use sana::engine::pipeline::job::{
    plan_base, run_base, BaseModels, BaseRequest, Binning, NoiseSource, TextEncoderAfter,
};
use sana::engine::pipeline::noise::seeded_noise;
use sana::engine::pipeline::refine::RefineSampling;
use sana::engine::pipeline::refine_job::{
    link_video_to_latents, run_refine, CachedSource, RefineRequest, RefineSource, SourceLatents, Upscale, VideoClip,
};
use sana::engine::pipeline::LatentVideo;
use sana::engine::progress::Progress;
use sana::engine::text::{
    encode_prompts, Gemma2Encoder, Instruction, PromptOptions, PromptTokenizer, DEFAULT_NEGATIVE_PROMPT,
};
use sana::engine::vae::{posterior_mean, VideoVae, WanVae};
use sana::io::frames::{frames_from_video, read_sequence, video_from_frames, write_frame, PngDepth, SequencePattern};
use sana::io::{write_f32, ModelFolder};

/// SANA-Video generation and reference tools.
#[derive(Parser)]
#[command(name = "sana", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one model component on tensors from a safetensors file (reference comparisons).
    #[command(subcommand)]
    Run(RunCommand),
    /// Base: prompt → frames (an image-sequence pattern) or latents (a .safetensors file).
    Generate(GenerateArgs),
    /// Refine: latents (Base's) or a plate → re-noised and denoised again (detail pass) → frames.
    Refine(RefineArgs),
    /// Latents (as `sana generate` writes them) → an image sequence, through the model's VAE.
    Decode(DecodeArgs),
    /// An image sequence → latents, through the model's VAE.
    Encode(EncodeArgs),
    /// Time one model component at a released config with random weights.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print what a model folder holds: components, configs, parameter counts, dtypes.
    Inspect(InspectArgs),
    /// What this machine offers the engine: CUDA driver and device, memory, cache, a model folder.
    Doctor(DoctorArgs),
    /// The latent cache on disk (SANA_CACHE_DIR, else ~/.cache/sana-ofx/latents).
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Args)]
struct DoctorArgs {
    /// A model folder to check as well.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List the entries: key, size, age.
    Ls {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove entries by key, or all of them.
    Rm {
        /// 64-hex-digit keys, as `sana cache ls` prints them.
        #[arg(required_unless_present = "all")]
        keys: Vec<String>,
        #[arg(long, conflicts_with = "keys")]
        all: bool,
    },
    /// Remove stale partial files, then the oldest entries until the cache fits.
    Gc {
        /// Size to keep, in MB.
        #[arg(long)]
        max_mb: u64,
    },
}

#[derive(Subcommand)]
enum RunCommand {
    /// The SANA-Video transformer: inputs `hidden_states`, `encoder_hidden_states`, `timestep`
    /// and optionally `encoder_attention_mask` (diffusers names); output `sample`.
    Dit(RunDitArgs),
    /// The text encoder (Gemma-2 + SANA-Video prompt handling): writes `prompt_embeds`,
    /// `prompt_attention_mask`, `negative_prompt_embeds`, `negative_prompt_attention_mask`.
    TextEncoder(RunTextArgs),
    /// A model folder's autoencoder decode, as diffusers' `vae.decode`: input `latents` (B, C, T,
    /// H, W) in the VAE's own latent space (not normalised); output `sample` (B, 3, F, H·s, W·s).
    VaeDecode(RunVaeArgs),
    /// A model folder's autoencoder encode, as diffusers' `vae.encode`: input `video` (B, 3, F,
    /// H, W) in [−1, 1]; outputs `latent_params` (`latent_dist.parameters`: mean | log-variance)
    /// and `latent_mean` (`latent_dist.mean`, what the pipelines use).
    VaeEncode(RunVaeArgs),
}

#[derive(Args)]
struct RunVaeArgs {
    /// A diffusers model folder with vae/ (Wan2.1's `AutoencoderKLWan` or LTX-2's
    /// `AutoencoderKLLTX2Video`).
    #[arg(long)]
    model: PathBuf,
    /// Which autoencoder the folder must hold: an error otherwise (default: whichever it holds).
    #[arg(long, value_enum)]
    vae: Option<VaeKind>,
    /// safetensors file with the input tensor.
    #[arg(long)]
    inputs: PathBuf,
    /// safetensors file to write the outputs to.
    #[arg(long)]
    out: PathBuf,
    /// Plan the LTX-2 VAE's memory (time chunks, decode tiles) for this many GiB instead of 80%
    /// of the device's free memory.
    #[arg(long, value_parser = parse_gib)]
    vae_memory_gib: Option<f64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum VaeKind {
    Ltx2,
    Wan,
}

impl std::fmt::Display for VaeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VaeKind::Ltx2 => "LTX-2",
            VaeKind::Wan => "Wan2.1",
        })
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The SANA-Video transformer forward.
    Dit(BenchDitArgs),
    /// Autoencoder decode and encode of one clip.
    Vae(BenchVaeArgs),
    /// The Gemma-2 text encoder on one prompt.
    Text(BenchTextArgs),
    /// Base end to end (prompt → text encoder → denoising with guidance → VAE decode) at the
    /// released 480p config with random weights.
    Generate(BenchGenerateArgs),
    /// The transformer's matrix-product shapes, every algorithm cuBLASLt's heuristic offers
    /// for each timed against the others (CUDA only): does its first choice leave speed behind?
    Gemm(BenchGemmArgs),
    /// The autoencoders' 3×3×3 convolution shapes (LTX-2 decoder and encoder at 704×1280×81,
    /// the Wan2.1 decoder at 480×832×81), each path the CUDA backend has timed against the others
    /// (CUDA only): does the engine's choice take the fastest?
    Conv(BenchConvArgs),
}

#[derive(Args)]
struct BenchConvArgs {
    /// Convolutions per timing sample.
    #[arg(long, default_value_t = 3)]
    iters: usize,
    #[arg(long, default_value = "cuda", value_parser = parse_device)]
    device: Device,
}

#[derive(Args)]
struct BenchGemmArgs {
    /// Token rows of the products (19360 = 720p at batch 2, 65520 = 480p at batch 2).
    #[arg(long, default_value_t = 19360)]
    rows: usize,
    /// Model width D and Mix-FFN hidden width F (the released 2B model: 2240, 6720).
    #[arg(long, default_value_t = 2240)]
    dim: usize,
    #[arg(long, default_value_t = 6720)]
    ffn: usize,
    /// Algorithms to time per shape, in the heuristic's order.
    #[arg(long, default_value_t = 8)]
    candidates: usize,
    /// Products per timing sample.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, default_value = "cuda", value_parser = parse_device)]
    device: Device,
}

/// Where to compute: `cpu` (the f32 reference backend) or `cuda` / `cuda:N` (bf16).
#[derive(Clone, Copy, Debug)]
enum Device {
    Cpu,
    Cuda(usize),
}

fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("`{s}` is not a device: use cpu, cuda or cuda:N")),
    }
}

#[derive(Args)]
struct RunDitArgs {
    /// A diffusers SANA-Video folder (with transformer/) or a transformer folder.
    #[arg(long)]
    model: PathBuf,
    /// safetensors file with the input tensors.
    #[arg(long)]
    inputs: PathBuf,
    /// safetensors file to write `sample` to.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

#[derive(Args)]
struct RunTextArgs {
    /// A diffusers SANA-Video folder (text_encoder/, tokenizer/, and transformer/ to check against).
    #[arg(long)]
    model: PathBuf,
    /// A prompt; repeat for a batch.
    #[arg(long, required = true)]
    prompt: Vec<String>,
    /// The negative prompt (default: the SANA-Video docs' one).
    #[arg(long)]
    negative: Option<String>,
    /// Appends " motion score: N." to each prompt, as the SANA-Video docs do.
    #[arg(long, default_value_t = 30, conflicts_with = "no_motion_score")]
    motion_score: i32,
    /// Leaves the prompts without a motion score.
    #[arg(long)]
    no_motion_score: bool,
    /// The complex human instruction before positive prompts.
    #[arg(long, value_enum, default_value_t = InstructionArg::Diffusers)]
    instruction: InstructionArg,
    /// safetensors file to write the embeddings and masks to.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

#[derive(Args)]
struct GenerateArgs {
    /// A diffusers SANA-Video folder (transformer/, text_encoder/, tokenizer/, vae/, scheduler/).
    #[arg(long)]
    model: PathBuf,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// The negative prompt (default: the SANA-Video docs' one).
    #[arg(long)]
    negative: Option<String>,
    /// Image-to-video: the first frame (PNG, or EXR in linear light), resized to cover the
    /// generation size and centre-cropped.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Height in pixels (default: 480 for the 480p model, 704 for the 720p one).
    #[arg(long)]
    height: Option<usize>,
    /// Width in pixels (default: 832 / 1280).
    #[arg(long)]
    width: Option<usize>,
    /// Frames (k·4 + 1 for the Wan VAE, k·8 + 1 for LTX-2).
    #[arg(long, default_value_t = 81)]
    frames: usize,
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Classifier-free guidance scale (1 disables the negative branch).
    #[arg(long, default_value_t = 6.0)]
    guidance: f32,
    /// Flow shift (default: scheduler/scheduler_config.json's flow_shift, else 8).
    #[arg(long)]
    flow_shift: Option<f64>,
    /// Appends " motion score: N." to the prompt, as the SANA-Video docs do.
    #[arg(long, default_value_t = 30, conflicts_with = "no_motion_score")]
    motion_score: i32,
    #[arg(long)]
    no_motion_score: bool,
    /// Seed of our initial noise (not PyTorch's generator: use --noise to reproduce a diffusers run).
    #[arg(long, default_value_t = 42, conflicts_with = "noise")]
    seed: u64,
    /// safetensors file whose `noise` (or else `latents`) tensor is the initial noise.
    #[arg(long)]
    noise: Option<PathBuf>,
    /// Generate at the requested size instead of the nearest aspect-ratio bin.
    #[arg(long)]
    no_binning: bool,
    /// Frames to write: `shot.%04d.exr` (linear light) or `shot.####.png` (sRGB, 16 bit); or a
    /// `.safetensors` file for the latents (B, C, T, H, W) alone.
    #[arg(long)]
    out: PathBuf,
    /// Also write the latents here (when --out is frames).
    #[arg(long)]
    save_latents: Option<PathBuf>,
    /// Number of the first frame written.
    #[arg(long, default_value_t = 1)]
    first_frame: usize,
    /// Neither read nor write the latent cache (SANA_CACHE_DIR).
    #[arg(long)]
    no_cache: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// Print what was written as one JSON object (paths, model, device, seconds) instead of one
    /// path per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RefineArgs {
    /// A diffusers SANA-Video folder (the refiner is its transformer in refine mode).
    #[arg(long)]
    model: PathBuf,
    /// Latents to refine (`latents` (1, C, T, H, W), as `sana generate` writes them): no decode
    /// and re-encode between Base and Refine.
    #[arg(long, conflicts_with = "input")]
    latents: Option<PathBuf>,
    /// Or a plate to refine: `plate.%04d.exr` (linear light) or `plate.####.png` (sRGB).
    #[arg(long, requires = "frames")]
    input: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    first_frame: usize,
    /// Plate frames to read (1 + 4k for the Wan VAE).
    #[arg(long)]
    frames: Option<usize>,
    #[arg(long)]
    prompt: String,
    #[arg(long)]
    negative: Option<String>,
    /// Fraction of the schedule re-run, (0, 1]: how much noise goes back in.
    #[arg(long, default_value_t = 0.3)]
    strength: f64,
    /// Steps of the full schedule (Refine runs about steps·strength of them).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 4.5)]
    guidance: f32,
    #[arg(long, default_value_t = 3.0)]
    flow_shift: f64,
    /// 2: upsample the latents ×2 with the LTX-2 latent upsampler before refining (frames come
    /// out at twice the size; the 720p model's LTX-2 VAE latents only). 1: refine at the size given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=2))]
    upscale: Option<u32>,
    /// The LTX-2 `latent_upsampler` folder for --upscale 2 (default: <model>/latent_upsampler).
    #[arg(long, requires = "upscale")]
    upsampler: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A safetensors file whose `noise` tensor is the re-noising noise, of the refined (upscaled)
    /// shape (reproduces a reference).
    #[arg(long)]
    noise: Option<PathBuf>,
    /// Neither read nor fill the latent cache.
    #[arg(long)]
    no_cache: bool,
    /// Frames (`shot.%04d.exr`, `shot.####.png`) or a `.safetensors` file for the latents.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// Print what was written as one JSON object (paths, model, device, seconds) instead of one
    /// path per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DecodeArgs {
    /// safetensors file with `latents` (1, C, T, H, W), transformer-space (normalised).
    latents: PathBuf,
    /// The model folder whose `vae/` decodes them.
    #[arg(long)]
    model: PathBuf,
    /// `shot.%04d.exr` (linear light) or `shot.####.png` (sRGB, 16 bit).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    first_frame: usize,
    /// Plan the LTX-2 VAE's memory (decode tiles, encode time chunks) for this many GiB instead
    /// of 80% of the device's free memory, e.g. on a GPU shared with other jobs.
    #[arg(long, value_parser = parse_gib)]
    vae_memory_gib: Option<f64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// Print what was written as one JSON object (paths, model, device, seconds) instead of one
    /// path per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EncodeArgs {
    /// The plate: `plate.%04d.exr` (linear light) or `plate.####.png` (sRGB).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value_t = 1)]
    first_frame: usize,
    /// How many frames to read: 1 + 4k for the Wan VAE.
    #[arg(long)]
    frames: usize,
    /// The model folder whose `vae/` encodes them.
    #[arg(long)]
    model: PathBuf,
    /// safetensors file to write `latents` (1, C, T, H, W) to, transformer-space.
    #[arg(long)]
    out: PathBuf,
    /// Plan the LTX-2 VAE's memory (decode tiles, encode time chunks) for this many GiB instead
    /// of 80% of the device's free memory, e.g. on a GPU shared with other jobs.
    #[arg(long, value_parser = parse_gib)]
    vae_memory_gib: Option<f64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// Print what was written as one JSON object (paths, model, device, seconds) instead of one
    /// path per line.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InstructionArg {
    /// diffusers' video wording (SanaVideoPipeline's default)
    Diffusers,
    /// none
    None,
}

#[derive(Args)]
struct BenchDitArgs {
    /// `480p`, `720p` (the released configs) or a transformer config.json.
    #[arg(long, default_value = "720p")]
    config: String,
    /// Batch (2 = one classifier-free-guidance step).
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Latent frames, height, width (default: the config's 81-frame default clip).
    #[arg(long, num_args = 3, value_names = ["T", "H", "W"])]
    latent: Option<Vec<usize>>,
    /// Caption tokens.
    #[arg(long, default_value_t = 300)]
    caption_len: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cuda", value_parser = parse_device)]
    device: Device,
}

#[derive(Args)]
struct BenchGenerateArgs {
    /// 480p (Wan2.1 VAE, 832×480) or 720p (LTX-2 VAE, 1280×704): the released configs.
    #[arg(long, default_value = "480p")]
    config: String,
    #[arg(long, default_value_t = 81)]
    frames: usize,
    #[arg(long, default_value_t = 50)]
    steps: usize,
    #[arg(long, default_value = "cuda", value_parser = parse_device)]
    device: Device,
}

#[derive(Args)]
struct BenchTextArgs {
    /// `gemma-2-2b` (the released config) or a text_encoder config.json.
    #[arg(long, default_value = "gemma-2-2b")]
    config: String,
    /// Prompt tokens (300: a prompt as the pipelines pad it).
    #[arg(long, default_value_t = 300)]
    tokens: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cuda", value_parser = parse_device)]
    device: Device,
}

#[derive(Args)]
struct BenchVaeArgs {
    /// `wan2.1` or `ltx2` (the released configs) or a vae config.json (Wan or LTX-2 class).
    #[arg(long, default_value = "wan2.1")]
    config: String,
    #[arg(long, default_value_t = 81)]
    frames: usize,
    #[arg(long, default_value_t = 480)]
    height: usize,
    #[arg(long, default_value_t = 832)]
    width: usize,
    /// decode, encode, or both (comma-separated).
    #[arg(long, default_value = "decode,encode")]
    ops: String,
    #[arg(long, default_value_t = 2)]
    iters: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cuda", value_parser = parse_device)]
    device: Device,
    /// LTX-2 decode: tile when the estimated activations exceed this many GiB (as on a card with
    /// that much free memory) instead of the device's available memory; 0: never tile.
    #[arg(long)]
    tile_budget_gib: Option<f64>,
    /// LTX-2 encode: stream the clip through the encoder this many frames at a time after the
    /// first (a multiple of 8) instead of as the device's memory decides; 0: the whole clip.
    #[arg(long)]
    encode_chunk_frames: Option<usize>,
    /// LTX-2 decode: stream the latents through the decoder this many video frames at a time (a
    /// multiple of 8) instead of as the device's memory decides; 0: the whole clip.
    #[arg(long)]
    decode_chunk_frames: Option<usize>,
}

#[derive(Args)]
struct InspectArgs {
    /// The model folder.
    folder: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Set by Ctrl-C: long runs stop between steps and write nothing (a second Ctrl-C quits at once).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() {
    let handler = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("interrupted: stopping after the current step (Ctrl-C again to quit at once)");
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C will kill the run without cleanup ({e})");
    }
    if let Err(e) = run_cli() {
        if matches!(e.downcast_ref::<sana::error::Error>(), Some(sana::error::Error::Cancelled)) {
            eprintln!("cancelled: nothing was written");
            std::process::exit(130);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run_cli() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(RunCommand::Dit(args)) => match args.device {
            Device::Cpu => run_dit(&Cpu, &args),
            Device::Cuda(n) => run_dit(&Cuda::new(n)?, &args),
        },
        Command::Run(RunCommand::TextEncoder(args)) => match args.device {
            Device::Cpu => run_text_encoder(&Cpu, &args),
            Device::Cuda(n) => run_text_encoder(&Cuda::new(n)?, &args),
        },
        Command::Run(RunCommand::VaeDecode(args)) => match args.device {
            Device::Cpu => run_vae(&Cpu, &args, VaeOp::Decode),
            Device::Cuda(n) => run_vae(&Cuda::new(n)?, &args, VaeOp::Decode),
        },
        Command::Run(RunCommand::VaeEncode(args)) => match args.device {
            Device::Cpu => run_vae(&Cpu, &args, VaeOp::Encode),
            Device::Cuda(n) => run_vae(&Cuda::new(n)?, &args, VaeOp::Encode),
        },
        Command::Generate(args) => match args.device {
            Device::Cpu => generate(&Cpu, &args),
            Device::Cuda(n) => generate(&Cuda::new(n)?, &args),
        },
        Command::Refine(args) => match args.device {
            Device::Cpu => refine_command(&Cpu, &args),
            Device::Cuda(n) => refine_command(&Cuda::new(n)?, &args),
        },
        Command::Decode(args) => match args.device {
            Device::Cpu => decode_command(&Cpu, &args),
            Device::Cuda(n) => decode_command(&Cuda::new(n)?, &args),
        },
        Command::Encode(args) => match args.device {
            Device::Cpu => encode_command(&Cpu, &args),
            Device::Cuda(n) => encode_command(&Cuda::new(n)?, &args),
        },
        Command::Bench(BenchCommand::Dit(args)) => match args.device {
            Device::Cpu => bench_dit(&Cpu, "sana-cpu", &args, |_| Ok(()), || Ok(None)),
            Device::Cuda(n) => {
                let be = Cuda::new(n)?;
                bench_dit(&be, "sana-cuda", &args, |b| Ok(b.synchronize()?), || Ok(Some(be.peak_memory()?)))?;
                print_profile(&be)
            }
        },
        Command::Bench(BenchCommand::Generate(args)) => match args.device {
            Device::Cpu => bench_generate(&Cpu, "sana-cpu", &args, |_| Ok(()), || Ok(None)),
            Device::Cuda(n) => {
                let be = Cuda::new(n)?;
                bench_generate(&be, "sana-cuda", &args, |b| Ok(b.synchronize()?), || Ok(Some(be.peak_memory()?)))
            }
        },
        Command::Bench(BenchCommand::Text(args)) => match args.device {
            Device::Cpu => bench_text(&Cpu, "sana-cpu", &args, |_| Ok(()), || Ok(None)),
            Device::Cuda(n) => {
                let be = Cuda::new(n)?;
                bench_text(&be, "sana-cuda", &args, |b| Ok(b.synchronize()?), || Ok(Some(be.peak_memory()?)))?;
                print_profile(&be)
            }
        },
        Command::Bench(BenchCommand::Vae(args)) => match args.device {
            Device::Cpu => bench_vae(&Cpu, "sana-cpu", &args, |_| Ok(()), || Ok(None)),
            Device::Cuda(n) => {
                let be = Cuda::new(n)?;
                bench_vae(&be, "sana-cuda", &args, |b| Ok(b.synchronize()?), || Ok(Some(be.peak_memory()?)))?;
                print_profile(&be)
            }
        },
        Command::Bench(BenchCommand::Gemm(args)) => match args.device {
            Device::Cpu => bail!("bench gemm times cuBLASLt algorithms: it needs --device cuda"),
            Device::Cuda(n) => bench_gemm(&Cuda::new(n)?, &args),
        },
        Command::Bench(BenchCommand::Conv(args)) => match args.device {
            Device::Cpu => bail!("bench conv times the CUDA convolution paths: it needs --device cuda"),
            Device::Cuda(n) => bench_conv(&Cuda::new(n)?, &args),
        },
        Command::Inspect(args) => run_inspect(args),
        Command::Cache(cmd) => run_cache(cmd),
        Command::Doctor(args) => run_doctor(args),
    }
}

fn run_dit<B: Backend>(be: &B, args: &RunDitArgs) -> Result<()> {
    let started = Instant::now();
    let folder = ModelFolder::new(&args.model)?;
    let model = SanaVideoTransformer::from_folder(be, &folder)
        .with_context(|| format!("loading the transformer from `{}`", args.model.display()))?;
    eprintln!(
        "loaded transformer: {} layers, D = {}, patch {:?}, {} parameters, on {} ({:.2} s)",
        model.config.num_layers,
        model.config.inner_dim(),
        model.config.patch_size,
        model.parameter_count,
        be.name(),
        started.elapsed().as_secs_f64()
    );
    let inputs = DitInputFile::open(&args.inputs)?;
    let latent = Tensor::from_host(be, &inputs.hidden_states.shape, &inputs.hidden_states.data)?;
    let caption = Tensor::from_host(be, &inputs.encoder_hidden_states.shape, &inputs.encoder_hidden_states.data)?;
    let mask = inputs.encoder_attention_mask.as_ref().map(|m| m.data.as_slice());
    let started = Instant::now();
    let out = model.forward(
        be,
        &DitInput { latent: &latent, caption: &caption, timesteps: &inputs.timesteps, caption_mask: mask },
    )?;
    let sample = out.to_host(be)?;
    eprintln!("forward {:?} -> {:?} in {:.3} s", latent.shape(), out.shape(), started.elapsed().as_secs_f64());
    if sample.iter().any(|v| !v.is_finite()) {
        bail!("the forward produced non-finite values; not writing `{}`", args.out.display());
    }
    write_f32(&args.out, &[("sample", out.shape(), &sample)])?;
    println!("{}", args.out.display());
    Ok(())
}

#[derive(Clone, Copy)]
enum VaeOp {
    Decode,
    Encode,
}

/// `sana run vae-decode | vae-encode`: one tensor file through the folder's autoencoder.
fn run_vae<B: Backend>(be: &B, args: &RunVaeArgs, op: VaeOp) -> Result<()> {
    let mut vae = VideoVae::from_folder(be, &ModelFolder::new(&args.model)?)
        .with_context(|| format!("loading the VAE from `{}`", args.model.display()))?;
    let found = match vae {
        VideoVae::Wan(_) => VaeKind::Wan,
        VideoVae::Ltx2(_) => VaeKind::Ltx2,
    };
    if let Some(asked) = args.vae.filter(|&asked| asked != found) {
        bail!("`{}`: its vae/ is the {found} VAE, not the {asked} one --vae asks for", args.model.display());
    }
    set_vae_memory(&mut vae, args.vae_memory_gib);
    let progress = StepLog(Instant::now().into());
    let started = Instant::now();
    let outputs = match op {
        VaeOp::Decode => {
            let (shape, z) = read_clip_tensor(&args.inputs, "latents", "(B, C, T, H, W) VAE latents")?;
            let (sample, out_shape) = vae.decode(be, &z, shape, &progress)?;
            vec![("sample", out_shape, sample)]
        }
        VaeOp::Encode => {
            let (shape, video) = read_clip_tensor(&args.inputs, "video", "(B, 3, F, H, W) video in [-1, 1]")?;
            let (params, params_shape) = vae.encode_parameters(be, &video, shape, &progress)?;
            let (mean, mean_shape) = posterior_mean(&params, params_shape);
            vec![("latent_params", params_shape, params), ("latent_mean", mean_shape, mean)]
        }
    };
    let described: Vec<_> = outputs.iter().map(|(name, shape, _)| format!("`{name}` {shape:?}")).collect();
    eprintln!(
        "{found} VAE on {}: `{}` -> {} in {:.3} s",
        be.name(),
        args.inputs.display(),
        described.join(", "),
        started.elapsed().as_secs_f64()
    );
    if let Some((name, ..)) = outputs.iter().find(|(_, _, v)| v.iter().any(|x| !x.is_finite())) {
        bail!("the VAE produced non-finite values in `{name}`; not writing `{}`", args.out.display());
    }
    let tensors: Vec<_> = outputs.iter().map(|(name, shape, v)| (*name, &shape[..], &v[..])).collect();
    write_f32(&args.out, &tensors)?;
    println!("{}", args.out.display());
    Ok(())
}

/// A five-axis tensor `name` of a safetensors file, as (shape, values); `what` says what it
/// should be in the errors.
fn read_clip_tensor(path: &Path, name: &str, what: &str) -> Result<([usize; 5], Vec<f32>)> {
    let t = HostTensor::read_required(&sana::io::TensorFiles::open(path)?, name, what)?;
    let shape: [usize; 5] = t
        .shape
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("`{}`: `{name}` has shape {:?}, expected {what}", path.display(), t.shape))?;
    Ok((shape, t.data))
}

fn run_text_encoder<B: Backend>(be: &B, args: &RunTextArgs) -> Result<()> {
    let folder = ModelFolder::new(&args.model)?;
    let encoder = Gemma2Encoder::from_folder(be, &folder)
        .with_context(|| format!("loading the text encoder from `{}`", args.model.display()))?;
    sana::engine::text::check_matches_transformer(&folder, &encoder.config)?;
    let tokenizer = PromptTokenizer::from_folder(&folder)?;
    let opts = PromptOptions {
        motion_score: (!args.no_motion_score).then_some(args.motion_score),
        instruction: match args.instruction {
            InstructionArg::Diffusers => Instruction::Diffusers,
            InstructionArg::None => Instruction::None,
        },
    };
    let negative = args.negative.as_deref().unwrap_or(DEFAULT_NEGATIVE_PROMPT);
    let started = Instant::now();
    let (pos, neg) = encode_prompts(be, &encoder, &tokenizer, &args.prompt, negative, &opts)?;
    eprintln!(
        "encoded {} prompt(s) with {} layers of Gemma-2 on {} in {:.2} s",
        args.prompt.len(),
        encoder.config.num_hidden_layers,
        be.name(),
        started.elapsed().as_secs_f64()
    );
    let (pe, ne) = (pos.embeds.to_host(be)?, neg.embeds.to_host(be)?);
    let mask_shape = [args.prompt.len(), pos.embeds.shape()[1]];
    write_f32(
        &args.out,
        &[
            ("prompt_embeds", pos.embeds.shape(), &pe),
            ("prompt_attention_mask", &mask_shape, &pos.mask),
            ("negative_prompt_embeds", neg.embeds.shape(), &ne),
            ("negative_prompt_attention_mask", &mask_shape, &neg.mask),
        ],
    )?;
    println!("{}", args.out.display());
    Ok(())
}

/// Progress on stderr, one line per step with its time.
struct StepLog(std::sync::Mutex<Instant>);

impl Progress for StepLog {
    fn update(&self, fraction: f32, label: &str) {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!("[{:>5.1}%] {label} (+{:.2} s)", fraction * 100.0, last.elapsed().as_secs_f64());
        *last = Instant::now();
    }
    fn cancelled(&self) -> bool {
        INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn generate<B: Backend>(be: &B, args: &GenerateArgs) -> Result<()> {
    let mut written = Written::new("generate", &args.model, be.name());
    let mut models = BaseModels::load(be, &args.model)?;
    let request = BaseRequest {
        prompt: args.prompt.clone(),
        negative: args.negative.clone(),
        height: args.height,
        width: args.width,
        frames: args.frames,
        steps: args.steps,
        guidance: args.guidance,
        flow_shift: args.flow_shift,
        motion_score: (!args.no_motion_score).then_some(args.motion_score),
        noise: match &args.noise {
            Some(path) => NoiseSource::File(path.clone()),
            None => NoiseSource::Seed(args.seed),
        },
        binning: if args.no_binning { Binning::Exact } else { Binning::Nearest },
        image: args.image.as_deref().map(sana::io::frames::read_frame).transpose()?,
    };
    let plan = plan_base(be, &models, &request)?;
    eprintln!(
        "generate: {} on {}, {}x{} ({}x{} requested), {} frames, latent {:?}, {} steps, guidance {}, shift {}",
        args.model.display(),
        be.name(),
        plan.height,
        plan.width,
        plan.requested.0,
        plan.requested.1,
        plan.frames,
        plan.shape,
        plan.sampling.steps,
        plan.sampling.guidance,
        plan.sampling.flow_shift
    );
    let cache = (!args.no_cache).then(|| LatentCache::new(0, default_cache_dir()));
    let progress = StepLog(Instant::now().into());
    let outcome = run_base(be, &mut models, &plan, cache.as_ref(), TextEncoderAfter::Release, &progress)?;
    if outcome.cache_hit {
        eprintln!("cache hit {}: not recomputed", plan.key);
    }
    written.cache_hit = Some(outcome.cache_hit);
    let latents = &outcome.latents;
    for warning in cache.iter().flat_map(|c| c.take_warnings()) {
        eprintln!("warning: {warning}");
    }
    let latents_path = match (&args.save_latents, is_latent_file(&args.out)) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => Some(args.out.clone()),
        (None, false) => None,
    };
    if let Some(path) = &latents_path {
        write_f32(path, &[("latents", &latents.shape, latents.data.as_slice())])?;
        written.latents = Some(path.clone());
    }
    if !is_latent_file(&args.out) {
        drop(models); // the transformer's memory goes back before the VAE runs
        let folder = ModelFolder::new(&args.model)?;
        let vae = VideoVae::from_folder(be, &folder)?;
        let latent = LatentVideo { shape: plan.shape, data: latents.data.to_vec() };
        let video = decode_to_size(be, &vae, &latent, plan.requested, &progress)?;
        written.frames = write_sequence(&args.out, &video, args.first_frame)?;
        // `sana refine --input` on these frames finds the latents instead of encoding them: the
        // key is over the frames as read back (PNG quantisation included). Only when the size
        // was not changed by binning: resized frames are not the decode of these latents.
        if let (Some(cache), true) = (&cache, plan.requested == (plan.height, plan.width)) {
            let plate = read_plate(&args.out, args.first_frame, written.frames.len())?;
            link_video_to_latents(cache, &folder, &plate, latents)?;
        }
    }
    written.print(args.json);
    Ok(())
}

/// What a command wrote: one path per line on stdout, or with `--json` one object a pipeline can
/// parse (the progress log stays on stderr either way).
struct Written {
    command: &'static str,
    model: PathBuf,
    device: String,
    started: Instant,
    latents: Option<PathBuf>,
    frames: Vec<PathBuf>,
    cache_hit: Option<bool>,
}

impl Written {
    fn new(command: &'static str, model: &Path, device: String) -> Self {
        Written {
            command,
            model: model.to_path_buf(),
            device,
            started: Instant::now(),
            latents: None,
            frames: Vec::new(),
            cache_hit: None,
        }
    }

    fn print(&self, json: bool) {
        if json {
            let report = serde_json::json!({
                "command": self.command,
                "model": self.model,
                "device": self.device,
                "latents": self.latents,
                "frames": self.frames,
                "cache_hit": self.cache_hit,
                "seconds": self.started.elapsed().as_secs_f64(),
            });
            println!("{report}");
            return;
        }
        for path in self.latents.iter().chain(&self.frames) {
            println!("{}", path.display());
        }
    }
}

/// `.safetensors` outputs hold latents; anything else is an image-sequence pattern.
fn is_latent_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Writes sample 0 of a decoded clip as `pattern` frames numbered from `first`: EXR (linear) or
/// PNG (sRGB, 16 bit) by the pattern's extension. Returns the paths written.
fn write_sequence(pattern: &Path, video: &DecodedVideo, first: usize) -> Result<Vec<PathBuf>> {
    let pattern = SequencePattern::parse(&pattern.to_string_lossy())?;
    let (values, shape) = video.sample(0);
    let mut written = Vec::new();
    for (i, frame) in frames_from_video(values, shape)?.iter().enumerate() {
        let path = pattern.path(first + i);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
        }
        write_frame(&path, frame, PngDepth::Sixteen)?;
        written.push(path);
    }
    Ok(written)
}

/// `sana refine`: latents or a plate → Refine with the SANA-Video transformer → frames or latents.
/// A plate that `sana generate` wrote (EXR or PNG, read back exactly as written) is not
/// re-encoded: its latents are found in the latent cache.
fn refine_command<B: Backend>(be: &B, args: &RefineArgs) -> Result<()> {
    let mut written = Written::new("refine", &args.model, be.name());
    let progress = StepLog(Instant::now().into());
    let source = match (&args.latents, &args.input) {
        (Some(path), _) => {
            let (shape, data) = read_clip_tensor(path, "latents", "(1, C, T, H, W) latents")?;
            RefineSource::Latents(LatentVideo { shape, data })
        }
        (None, Some(input)) => {
            let count = args.frames.context("--frames is required with --input")?;
            RefineSource::Video(read_plate(input, args.first_frame, count)?)
        }
        (None, None) => bail!("give the clip to refine: --latents FILE or --input PATTERN --frames N"),
    };
    let upscale = match (args.upscale.unwrap_or(1), &args.upsampler) {
        (1, None) => Upscale::None,
        (1, Some(_)) => bail!("--upsampler is for --upscale 2; with --upscale 1 nothing is upsampled"),
        (_, Some(dir)) => Upscale::LatentX2 { upsampler: dir.clone() },
        (_, None) => Upscale::latent_x2_in(&args.model),
    };
    let mut models = BaseModels::load(be, &args.model)?;
    let request = RefineRequest {
        source,
        prompt: args.prompt.clone(),
        negative: args.negative.clone(),
        sampling: RefineSampling {
            steps: args.steps,
            strength: args.strength,
            guidance: args.guidance,
            flow_shift: args.flow_shift,
        },
        noise: match &args.noise {
            Some(path) => NoiseSource::File(path.clone()),
            None => NoiseSource::Seed(args.seed),
        },
        cached_source: CachedSource::Use,
        upscale,
    };
    let s = &request.sampling;
    eprintln!(
        "refine: {} on {}, strength {} of {} steps, guidance {}, shift {}{}",
        args.model.display(),
        be.name(),
        s.strength,
        s.steps,
        s.guidance,
        s.flow_shift,
        match &request.upscale {
            Upscale::None => String::new(),
            Upscale::LatentX2 { upsampler } => format!(", upscaled ×2 with {}", upsampler.display()),
        }
    );
    let cache = (!args.no_cache).then(|| LatentCache::new(0, default_cache_dir()));
    let outcome = run_refine(be, &mut models, &request, cache.as_ref(), &progress)?;
    match outcome.source {
        SourceLatents::Cached => {
            eprintln!("the plate's latents were in the cache (written by sana generate, or an earlier encode): not re-encoded")
        }
        SourceLatents::Encoded => eprintln!("the plate was encoded by the VAE"),
        SourceLatents::Given => {}
    }
    if outcome.cache_hit {
        eprintln!("refined latents served from the cache: not recomputed");
    }
    for warning in cache.iter().flat_map(|c| c.take_warnings()) {
        eprintln!("warning: {warning}");
    }
    written.cache_hit = Some(outcome.cache_hit);
    let refined = &outcome.latents;
    let shape: [usize; 5] =
        refined.shape.clone().try_into().map_err(|_| anyhow::anyhow!("refined latents of rank 5"))?;
    if is_latent_file(&args.out) {
        write_f32(&args.out, &[("latents", &refined.shape, refined.data.as_slice())])?;
        written.latents = Some(args.out.clone());
        written.print(args.json);
        return Ok(());
    }
    let vae = models.vae(be)?;
    let (_, sf) = vae.factors();
    let latent = LatentVideo { shape, data: refined.data.to_vec() };
    let mut video = decode_to_size(be, vae, &latent, (shape[3] * sf, shape[4] * sf), &progress)?;
    if let Some(crop) = outcome.crop {
        // a plate off the model's grid was padded at its end: cut the result back to its size
        eprintln!(
            "the plate was padded to the model's grid; the result is cut back to {crop:?} (frames, height, width)"
        );
        video = crop_video(&video, crop)?;
    }
    written.frames = write_sequence(&args.out, &video, args.first_frame)?;
    written.print(args.json);
    Ok(())
}

/// A plate (`plate.%04d.exr` or `plate.####.png`, `count` frames from `first`) as the VAE encoder
/// takes it: (1, 3, F, H, W) in [−1, 1].
fn read_plate(pattern: &Path, first: usize, count: usize) -> Result<VideoClip> {
    let seq = SequencePattern::parse(&pattern.to_string_lossy())?;
    let frames = read_sequence(&seq, first, count)?;
    let names: Vec<PathBuf> = (0..count).map(|i| seq.path(first + i)).collect();
    let (data, [c, t, h, w]) = video_from_frames(&frames, &names)?;
    Ok(VideoClip { shape: [1, c, t, h, w], data })
}

/// `sana decode`: latents (as `sana generate` writes them) → an image sequence.
fn decode_command<B: Backend>(be: &B, args: &DecodeArgs) -> Result<()> {
    let mut written = Written::new("decode", &args.model, be.name());
    let (shape, data) = read_clip_tensor(&args.latents, "latents", "(1, C, T, H, W) transformer-space latents")?;
    let mut vae = VideoVae::from_folder(be, &ModelFolder::new(&args.model)?)?;
    set_vae_memory(&mut vae, args.vae_memory_gib);
    let (tf, sf) = vae.factors();
    eprintln!(
        "decode: {} with {}'s VAE on {}: {} frames of {}x{}",
        args.latents.display(),
        args.model.display(),
        be.name(),
        1 + tf * (shape[2] - 1),
        shape[3] * sf,
        shape[4] * sf
    );
    let progress = StepLog(Instant::now().into());
    let latent = LatentVideo { shape, data };
    let size = (shape[3] * sf, shape[4] * sf);
    let video = decode_to_size(be, &vae, &latent, size, &progress)?;
    written.frames = write_sequence(&args.out, &video, args.first_frame)?;
    written.print(args.json);
    Ok(())
}

/// `--vae-memory-gib`, where given, as the VAE's memory budget.
fn set_vae_memory<B: Backend>(vae: &mut VideoVae<B>, gib: Option<f64>) {
    if let Some(g) = gib {
        vae.set_memory_budget(sana::engine::vae::ltx2::MemoryBudget::Bytes(gib_to_bytes(g)));
    }
}

fn gib_to_bytes(gib: f64) -> usize {
    (gib * (1u64 << 30) as f64) as usize
}

/// A positive, finite number of GiB.
fn parse_gib(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(g) if g.is_finite() && g > 0.0 => Ok(g),
        _ => Err(format!("`{s}`: expected a positive number of GiB")),
    }
}

/// `sana encode`: an image sequence → transformer-space latents.
fn encode_command<B: Backend>(be: &B, args: &EncodeArgs) -> Result<()> {
    let mut written = Written::new("encode", &args.model, be.name());
    let plate = read_plate(&args.input, args.first_frame, args.frames)?;
    let mut vae = VideoVae::from_folder(be, &ModelFolder::new(&args.model)?)?;
    set_vae_memory(&mut vae, args.vae_memory_gib);
    let [_, _, t, h, w] = plate.shape;
    eprintln!("encode: {} frames of {w}x{h} from {} on {}", t, args.input.display(), be.name());
    let progress = StepLog(Instant::now().into());
    let latents = encode_video(be, &vae, &plate.data, plate.shape, &progress)?;
    write_f32(&args.out, &[("latents", &latents.shape, latents.data.as_slice())])?;
    written.latents = Some(args.out.clone());
    written.print(args.json);
    Ok(())
}

/// One JSON line per (shape, path): ms, TFLOP/s, and whether it is the engine's choice; then the
/// chosen path against the fastest per shape on stderr. The shapes are the autoencoders' own
/// calls at 704×1280×81 (LTX-2) and 480×832×81 (Wan), time padding already materialised as the
/// blocks do, spatial padding 1 in the kernel.
fn bench_conv(be: &Cuda, args: &BenchConvArgs) -> Result<()> {
    use sana::backend::{ConvDims, PadMode};
    let conv = |input: [usize; 3], c_in, c_out, spatial_pad| ConvDims {
        input,
        c_in,
        c_out,
        kernel: [3; 3],
        stride: [1; 3],
        pad_before: [0, 1, 1],
        pad_after: [0, 1, 1],
        spatial_pad,
        upsample: 1,
    };
    // the Wan decoder's spatial upsampling: nearest ×2 read by a 3×3 conv (4 frames of 240×416)
    let upsampling = ConvDims { kernel: [1, 3, 3], upsample: 2, ..conv([4, 240, 416], 192, 96, PadMode::Zeros) };
    let shapes = [
        ("ltx2 dec conv_in 128->1024", conv([13, 22, 40], 128, 1024, PadMode::Reflect)),
        ("ltx2 dec 128->128 full res", conv([83, 176, 320], 128, 128, PadMode::Reflect)),
        ("ltx2 dec conv_out 128->48", conv([83, 176, 320], 128, 48, PadMode::Reflect)),
        ("ltx2 dec 256->256", conv([43, 88, 160], 256, 256, PadMode::Reflect)),
        ("ltx2 dec 256->1024 upsampler", conv([43, 88, 160], 256, 1024, PadMode::Reflect)),
        ("ltx2 dec 512->512", conv([23, 44, 80], 512, 512, PadMode::Reflect)),
        ("ltx2 dec 1024->1024 mid", conv([13, 22, 40], 1024, 1024, PadMode::Reflect)),
        ("ltx2 enc conv_in 48->128", conv([83, 176, 320], 48, 128, PadMode::Zeros)),
        ("ltx2 enc 256->256", conv([83, 88, 160], 256, 256, PadMode::Zeros)),
        ("ltx2 enc 512->512", conv([43, 88, 160], 512, 512, PadMode::Zeros)),
        ("ltx2 enc 1024->1024", conv([23, 44, 80], 1024, 1024, PadMode::Zeros)),
        ("wan full res 96->96", conv([6, 480, 832], 96, 96, PadMode::Zeros)),
        ("wan 192->192", conv([6, 240, 416], 192, 192, PadMode::Zeros)),
        ("wan 384->384", conv([6, 120, 208], 384, 384, PadMode::Zeros)),
        ("wan dec conv_out 96->3", conv([6, 480, 832], 96, 3, PadMode::Zeros)),
        ("wan dec upsample x2 + 192->96", upsampling),
    ];
    for (name, d) in shapes {
        let timings = be.bench_conv(d, args.iters)?;
        for t in &timings {
            println!(
                "{}",
                serde_json::json!({
                    "shape": name, "input": d.input, "c_in": d.c_in, "c_out": d.c_out,
                    "path": format!("{:?}", t.path), "chosen": t.chosen,
                    "median_ms": t.median_ms, "tflops": t.tflops,
                })
            );
        }
        let best = timings.iter().min_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
        if let (Some(chosen), Some(best)) = (timings.iter().find(|t| t.chosen), best) {
            eprintln!(
                "{name:26} chosen {:?} {:.2} ms ({:.0} TFLOP/s), fastest {:?} {:.2} ms ({:.0} TFLOP/s)",
                chosen.path, chosen.median_ms, chosen.tflops, best.path, best.median_ms, best.tflops
            );
        }
    }
    Ok(())
}

/// One JSON line per (product, algorithm): the heuristic's rank, ms, TFLOP/s, and the
/// algorithm's configuration; then the best against the first choice per product on stderr.
fn bench_gemm(be: &Cuda, args: &BenchGemmArgs) -> Result<()> {
    use sana::backend::cuda::bench::GemmShape;
    let (rows, d, f) = (args.rows, args.dim, args.ffn);
    let shape = |m, n, k, bias, accumulate| GemmShape { m, n, k, bias, accumulate };
    let products = [
        ("qkv", shape(rows, 3 * d, d, false, false)),
        ("attention out, cross q", shape(rows, d, d, true, false)),
        ("cross out (into the residual)", shape(rows, d, d, true, true)),
        ("conv_inverted", shape(rows, 2 * f, d, true, false)),
        ("conv_point", shape(rows, d, f, false, false)),
        ("temporal conv (K = 3D, with addend)", shape(rows, d, 3 * d, false, true)),
        ("caption k / v (600 rows)", shape(600, d, d, true, false)),
    ];
    for (name, s) in products {
        let timings = be.bench_gemm(s, args.candidates, args.iters)?;
        for t in &timings {
            println!(
                "{}",
                serde_json::json!({
                    "product": name, "m": s.m, "n": s.n, "k": s.k, "rank": t.rank,
                    "median_ms": t.median_ms, "tflops": t.tflops, "waves": t.waves,
                    "config": t.config,
                })
            );
        }
        if let (Some(first), Some(best)) =
            (timings.first(), timings.iter().min_by(|a, b| a.median_ms.total_cmp(&b.median_ms)))
        {
            eprintln!(
                "{name:48} first {:.3} ms ({:.0} TFLOP/s), best rank {} {:.3} ms ({:.0} TFLOP/s, {:+.1}%), {} algorithms",
                first.median_ms,
                first.tflops,
                best.rank,
                best.median_ms,
                best.tflops,
                100.0 * (best.median_ms / first.median_ms - 1.0),
                timings.len()
            );
        }
    }
    Ok(())
}

fn bench_config_path(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs");
    match name {
        "480p" => root.join("sana_video_2b_480p.json"),
        "720p" => root.join("sana_video_2b_720p.json"),
        path => PathBuf::from(path),
    }
}

fn bench_dit<B: Backend>(
    be: &B,
    impl_name: &str,
    args: &BenchDitArgs,
    sync: impl Fn(&B) -> Result<()>,
    peak_memory: impl Fn() -> Result<Option<usize>>,
) -> Result<()> {
    let config_path = bench_config_path(&args.config);
    let started = Instant::now();
    let model = SanaVideoTransformer::random(be, &config_path, 42)?;
    sync(be)?;
    let weights = peak_memory()?;
    let cfg = &model.config;
    // Default latent: 81 frames at the config's resolution (480p: 21×60×104 Wan latent; 720p:
    // 11×22×40 LTX-2 latent), MODEL.md §1.
    let latent = match &args.latent {
        Some(l) => [l[0], l[1], l[2]],
        None if cfg.in_channels == 128 => [11, 22, 40],
        None => [21, 60, 104],
    };
    let [pt, ph, pw] = cfg.patch_size;
    let tokens = latent[0] / pt * (latent[1] / ph) * (latent[2] / pw);
    eprintln!(
        "bench dit: {} on {}, batch {}, latent {:?} ({tokens} tokens), caption {}, weights ready in {:.1} s",
        config_path.display(),
        be.name(),
        args.batch,
        latent,
        args.caption_len,
        started.elapsed().as_secs_f64()
    );
    let shape = [args.batch, cfg.in_channels, latent[0], latent[1], latent[2]];
    let noise = |n: usize, salt: u64| -> Vec<f32> {
        let mut state = salt;
        (0..n)
            .map(|_| (sana::engine::weights::splitmix64(&mut state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    };
    let x = Tensor::from_vec(be, &shape, noise(shape.iter().product(), 1))?;
    let caption_shape = [args.batch, args.caption_len, cfg.caption_channels];
    let caption = Tensor::from_vec(be, &caption_shape, noise(caption_shape.iter().product(), 2))?;
    let mut mask = vec![1.0f32; args.batch * args.caption_len];
    // the second sample's caption is shorter, as a negative prompt usually is
    if args.batch > 1 {
        let keep = args.caption_len.saturating_sub(50).max(1);
        mask[args.caption_len + keep..2 * args.caption_len].fill(0.0);
    }
    let timesteps = Timesteps::PerSample((0..args.batch).map(|i| 500.0 + 200.0 * (i % 3) as f32).collect());
    let input = DitInput { latent: &x, caption: &caption, timesteps: &timesteps, caption_mask: Some(&mask) };

    for _ in 0..args.warmup {
        model.forward(be, &input)?;
    }
    sync(be)?;
    let mut times = Vec::with_capacity(args.iters);
    let mut enqueue_ms = 0.0;
    for _ in 0..args.iters {
        let t0 = Instant::now();
        let out = model.forward(be, &input)?;
        enqueue_ms += t0.elapsed().as_secs_f64() * 1e3;
        sync(be)?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(out);
    }
    // host time to enqueue one forward: near the total means the GPU waits for the host
    eprintln!("host enqueue per forward: {:.1} ms", enqueue_ms / args.iters.max(1) as f64);
    let out = model.forward(be, &input)?.to_host(be)?;
    if out.iter().any(|v| !v.is_finite()) {
        bail!("the forward produced non-finite values");
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let flops = cfg.forward_flops(args.batch, tokens, args.caption_len);
    let gib = |b: Option<usize>| b.map(|b| b as f64 / (1u64 << 30) as f64);
    let result = serde_json::json!({
        "impl": impl_name,
        "device": be.name(),
        "config": config_path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
        "batch": args.batch,
        "tokens": tokens,
        "median_ms": median,
        "min_ms": times[0],
        "peak_gib": gib(peak_memory()?),
        "weights_gib": gib(weights),
        "tflop": flops / 1e12,
        "tflops": flops / 1e12 / (median / 1e3),
    });
    println!("{result}");
    Ok(())
}

/// `sana generate`'s work at the released 480p config, random weights (Gemma-2-2B, the 2B
/// transformer, the Wan2.1 VAE), 832×480: text encoding of the prompt and the default negative,
/// `steps` DPM-Solver++ steps with guidance 6, the decode. The tokenizer is the bundled tiny
/// model's (token ids only index the random embedding table; the lengths are the pipeline's). The
/// models load before the clock starts; the transformer stays resident while the VAE decodes
/// (as in the plugin), so the peak is the honest one for a long-lived process.
fn bench_generate<B: Backend>(
    be: &B,
    impl_name: &str,
    args: &BenchGenerateArgs,
    sync: impl Fn(&B) -> Result<()>,
    peak_memory: impl Fn() -> Result<Option<usize>>,
) -> Result<()> {
    use sana::engine::pipeline::base::{denoise_text_to_video, BaseSampling};
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs");
    let tiny =
        ModelFolder::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline/tiny-sana-video"))?;
    let encoder = Gemma2Encoder::random(be, &configs.join("gemma_2_2b.json"), 1)?;
    let tokenizer = PromptTokenizer::from_folder(&tiny)?;
    // the released pairs: 480p = Wan2.1 VAE (16 ch, 8×/4×), 720p = LTX-2 VAE (128 ch, 32×/8×)
    let (transformer, vae, shape) = match args.config.as_str() {
        "480p" => (
            SanaVideoTransformer::random(be, &configs.join("sana_video_2b_480p.json"), 2)?,
            VideoVae::Wan(Box::new(WanVae::random(be, &configs.join("wan2.1_vae.json"), 3)?)),
            [1, 16, (args.frames - 1) / 4 + 1, 60, 104],
        ),
        "720p" => (
            SanaVideoTransformer::random(be, &configs.join("sana_video_2b_720p.json"), 2)?,
            VideoVae::Ltx2(Box::new(sana::engine::vae::Ltx2Vae::random(be, &configs.join("ltx2_vae.json"), 3)?)),
            [1, 128, (args.frames - 1) / 8 + 1, 22, 40],
        ),
        other => bail!("--config: `{other}` is not 480p or 720p"),
    };
    sync(be)?;
    let weights = peak_memory()?;
    let noise = seeded_noise(shape, 42);
    let opts = PromptOptions { motion_score: Some(30), instruction: Instruction::Diffusers };
    let prompt = ["a cat sleeping on a warm windowsill".to_string()];
    let clock = StepClock::default();
    let run = |steps: usize| -> Result<(f64, f64, f64, Vec<f32>)> {
        let t0 = Instant::now();
        let (pos, neg) = encode_prompts(be, &encoder, &tokenizer, &prompt, DEFAULT_NEGATIVE_PROMPT, &opts)?;
        sync(be)?;
        let t1 = Instant::now();
        let sampling = BaseSampling { steps, guidance: 6.0, flow_shift: 8.0 };
        let captions = Captions { positive: &pos, negative: &neg };
        let latents = denoise_text_to_video(be, &transformer, captions, &noise, &sampling, &clock)?;
        sync(be)?;
        let t2 = Instant::now();
        let video =
            sana::engine::pipeline::frames::decode_latents(be, &vae, &latents, &sana::engine::progress::Silent)?;
        sync(be)?;
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        Ok((ms(t0, t1), ms(t1, t2), ms(t2, Instant::now()), video.data))
    };
    run(2)?; // warmup: kernels, cuBLASLt heuristics, the memory pool
    clock.0.lock().map_err(|_| anyhow::anyhow!("step clock poisoned"))?.clear();
    let t0 = Instant::now();
    let (text_ms, denoise_ms, decode_ms, video) = run(args.steps)?;
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;
    // wall time of each denoising step (transformer pass + guidance + solver + host copies)
    let marks = clock.0.lock().map_err(|_| anyhow::anyhow!("step clock poisoned"))?.clone();
    let mut step_ms: Vec<f64> = marks.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1e3).collect();
    step_ms.sort_by(f64::total_cmp);
    let step_median_ms = step_ms.get(step_ms.len() / 2).copied();
    let gib = |b: Option<usize>| b.map(|b| b as f64 / (1u64 << 30) as f64);
    println!(
        "{}",
        serde_json::json!({
            "impl": impl_name, "device": be.name(), "config": args.config, "frames": args.frames, "steps": args.steps,
            "total_ms": total_ms, "text_ms": text_ms, "denoise_ms": denoise_ms, "decode_ms": decode_ms,
            "step_median_ms": step_median_ms, "step_min_ms": step_ms.first(), "step_max_ms": step_ms.last(),
            "peak_gib": gib(peak_memory()?), "weights_gib": gib(weights),
            "finite": video.iter().all(|v| v.is_finite()),
        })
    );
    Ok(())
}

/// A progress sink that only notes when each update arrives: the denoising loop reports at the
/// start of every step and once at the end, so consecutive marks bound one step.
#[derive(Default)]
struct StepClock(std::sync::Mutex<Vec<Instant>>);

impl sana::engine::progress::Progress for StepClock {
    fn update(&self, _: f32, _: &str) {
        if let Ok(mut marks) = self.0.lock() {
            marks.push(Instant::now());
        }
    }

    fn cancelled(&self) -> bool {
        false
    }
}

/// One Gemma-2 forward over `tokens` ids at a released config, random weights; one JSON line,
/// comparable with tools/bench_text.py.
fn bench_text<B: Backend>(
    be: &B,
    impl_name: &str,
    args: &BenchTextArgs,
    sync: impl Fn(&B) -> Result<()>,
    peak_memory: impl Fn() -> Result<Option<usize>>,
) -> Result<()> {
    let config_path = match args.config.as_str() {
        "gemma-2-2b" => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs/gemma_2_2b.json"),
        path => PathBuf::from(path),
    };
    let encoder = sana::engine::text::Gemma2Encoder::random(be, &config_path, 42)?;
    sync(be)?;
    let weights = peak_memory()?;
    let mut state = 7u64;
    let vocab = encoder.config.vocab_size as u64;
    let ids: Vec<u32> =
        (0..args.tokens).map(|_| (sana::engine::weights::splitmix64(&mut state) % vocab) as u32).collect();
    let mask = vec![1.0f32; args.tokens];
    for _ in 0..args.warmup {
        encoder.forward(be, &ids, &mask, 1)?;
    }
    sync(be)?;
    let mut times = Vec::new();
    for _ in 0..args.iters.max(1) {
        let t0 = Instant::now();
        let out = encoder.forward(be, &ids, &mask, 1)?;
        sync(be)?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(out);
    }
    let out = encoder.forward(be, &ids, &mask, 1)?.to_host(be)?;
    times.sort_by(f64::total_cmp);
    let gib = |b: Option<usize>| b.map(|b| b as f64 / (1u64 << 30) as f64);
    let result = serde_json::json!({
        "impl": impl_name,
        "device": be.name(),
        "tokens": args.tokens,
        "median_ms": times[times.len() / 2],
        "min_ms": times[0],
        "peak_gib": gib(peak_memory()?),
        "weights_gib": gib(weights),
        "finite": out.iter().all(|v| v.is_finite()),
    });
    println!("{result}");
    Ok(())
}

/// Decode (and encode) of one clip with the Wan2.1 VAE at a released config, random weights;
/// one JSON line per op, comparable with tools/bench_vae.py.
fn bench_vae<B: Backend>(
    be: &B,
    impl_name: &str,
    args: &BenchVaeArgs,
    sync: impl Fn(&B) -> Result<()>,
    peak_memory: impl Fn() -> Result<Option<usize>>,
) -> Result<()> {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs");
    let config_path = match args.config.as_str() {
        "wan2.1" => configs.join("wan2.1_vae.json"),
        "ltx2" => configs.join("ltx2_vae.json"),
        path => PathBuf::from(path),
    };
    // the class named in the config picks the autoencoder, as a model folder's vae/ does
    let class: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path)?)?;
    let (vae, z) = if class["_class_name"] == "AutoencoderKLLTX2Video" {
        use sana::engine::vae::ltx2::{Chunking, MemoryBudget, TileSpec, Tiling};
        let mut v = sana::engine::vae::Ltx2Vae::random(be, &config_path, 42)?;
        v.tiling = match args.tile_budget_gib {
            None => Tiling::default(),
            Some(g) if g <= 0.0 => Tiling::Off,
            Some(g) => Tiling::Auto { budget: MemoryBudget::Bytes(gib_to_bytes(g)), tiles: TileSpec::DIFFUSERS },
        };
        let chunking = |frames: Option<usize>| match frames {
            None => Chunking::default(),
            Some(0) => Chunking::Off,
            Some(n) => Chunking::Frames(n),
        };
        v.encode_chunking = chunking(args.encode_chunk_frames);
        v.decode_chunking = chunking(args.decode_chunk_frames);
        let z = v.config.latent_channels;
        (VideoVae::Ltx2(Box::new(v)), z)
    } else {
        let v = WanVae::random(be, &config_path, 42)?;
        let z = v.config.z_dim;
        (VideoVae::Wan(Box::new(v)), z)
    };
    sync(be)?;
    let weights = peak_memory()?;
    let (tf, sf) = vae.factors();
    sana::engine::vae::check_frame_count(args.frames, tf)?;
    let latent = [1, z, (args.frames - 1) / tf + 1, args.height / sf, args.width / sf];
    let video = [1, 3, args.frames, args.height, args.width];
    let uniform = |n: usize, salt: u64| -> Vec<f32> {
        let mut state = salt;
        (0..n)
            .map(|_| (sana::engine::weights::splitmix64(&mut state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    };
    let gib = |b: Option<usize>| b.map(|b| b as f64 / (1u64 << 30) as f64);
    for op in args.ops.split(',') {
        let (input, shape) = match op {
            "decode" => (uniform(latent.iter().product(), 1), latent),
            "encode" => (uniform(video.iter().product(), 2), video),
            other => bail!("--ops: unknown op `{other}` (decode, encode)"),
        };
        let run = || -> Result<Vec<f32>> {
            let out = if op == "decode" {
                vae.decode(be, &input, shape, &sana::engine::progress::Silent)?.0
            } else {
                vae.encode(be, &input, shape, &sana::engine::progress::Silent)?.0
            };
            sync(be)?;
            Ok(out)
        };
        run()?; // warmup: cuBLASLt heuristics, the memory pool
        let mut times = Vec::new();
        let mut out = Vec::new();
        for _ in 0..args.iters.max(1) {
            let t0 = Instant::now();
            out = run()?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let result = serde_json::json!({
            "impl": impl_name,
            "device": be.name(),
            "op": op,
            "frames": args.frames,
            "height": args.height,
            "width": args.width,
            "encode_chunk_frames": args.encode_chunk_frames,
            "decode_chunk_frames": args.decode_chunk_frames,
            "median_ms": times[times.len() / 2],
            "min_ms": times[0],
            "peak_gib": gib(peak_memory()?),
            "weights_gib": gib(weights),
            "finite": out.iter().all(|v| v.is_finite()),
        });
        println!("{result}");
    }
    Ok(())
}

/// With `SANA_PROFILE=1`: device time per op over the bench's forwards (stderr).
fn print_profile(be: &Cuda) -> Result<()> {
    eprintln!("cuBLASLt heuristic queries: {}", be.heuristic_queries());
    let rows = be.profile_report()?;
    let total: f64 = rows.iter().map(|r| r.1).sum();
    for (label, ms, calls) in rows.iter().take(25) {
        eprintln!("{:>9.2} ms {:>5.1}% {calls:>5}x  {label}", ms, 100.0 * ms / total.max(1e-9));
    }
    Ok(())
}

fn run_doctor(args: DoctorArgs) -> Result<()> {
    let cuda = match Cuda::new(0) {
        Ok(be) => {
            let (free, total) = be.memory()?;
            serde_json::json!({ "ok": true, "device": be.name(), "free_gib": free as f64 / (1u64 << 30) as f64,
                                "total_gib": total as f64 / (1u64 << 30) as f64 })
        }
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    let cache_dir = default_cache_dir();
    let cache = cache_dir.as_ref().map(|d| {
        let entries = DiskStore::new(d.clone()).list().unwrap_or_default();
        serde_json::json!({ "dir": d, "entries": entries.len(), "bytes": entries.iter().map(|e| e.bytes).sum::<u64>() })
    });
    let model = args.model.as_ref().map(|m| match inspect(m) {
        Ok(report) => {
            let problems: Vec<String> = report.components.iter().flat_map(|c| c.problems.clone()).collect();
            serde_json::json!({ "folder": m, "components": report.components.iter().map(|c| &c.name).collect::<Vec<_>>(),
                                "problems": problems })
        }
        Err(e) => serde_json::json!({ "folder": m, "problems": [e.to_string()] }),
    });
    let report = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "cpu_threads": rayon::current_num_threads(),
        "cuda": cuda,
        "cache": cache,
        "model": model,
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!("sana {} — {} CPU threads", env!("CARGO_PKG_VERSION"), rayon::current_num_threads());
    match report["cuda"]["ok"].as_bool() {
        Some(true) => println!(
            "cuda: {} — {:.1} of {:.1} GiB free",
            report["cuda"]["device"].as_str().unwrap_or("?"),
            report["cuda"]["free_gib"].as_f64().unwrap_or(0.0),
            report["cuda"]["total_gib"].as_f64().unwrap_or(0.0)
        ),
        _ => println!("cuda: unavailable — {}", report["cuda"]["error"].as_str().unwrap_or("?")),
    }
    match &report["cache"] {
        serde_json::Value::Null => println!("cache: no folder (set SANA_CACHE_DIR)"),
        c => println!(
            "cache: {} — {} entries, {:.1} MB",
            c["dir"].as_str().unwrap_or("?"),
            c["entries"],
            c["bytes"].as_f64().unwrap_or(0.0) / 1e6
        ),
    }
    if let Some(m) = report["model"].as_object() {
        println!(
            "model: {} — components {}",
            m["folder"].as_str().unwrap_or("?"),
            m.get("components").map(|c| c.to_string()).unwrap_or_default()
        );
        for p in m["problems"].as_array().into_iter().flatten() {
            println!("  problem: {}", p.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}

fn run_cache(cmd: CacheCommand) -> Result<()> {
    let dir = default_cache_dir().context("no cache folder: set SANA_CACHE_DIR (or HOME)")?;
    let disk = DiskStore::new(dir.clone());
    match cmd {
        CacheCommand::Ls { json } => {
            let entries = disk.list()?;
            if json {
                println!("{}", serde_json::json!({ "dir": dir, "entries": entries }));
            } else {
                let total: u64 = entries.iter().map(|e| e.bytes).sum();
                println!("{} ({} entries, {:.1} MB)", dir.display(), entries.len(), total as f64 / 1e6);
                for e in &entries {
                    println!("{}  {:>10.3} MB  {:>8} s old", e.key, e.bytes as f64 / 1e6, e.age_s);
                }
            }
        }
        CacheCommand::Rm { keys, all } => {
            let targets: Vec<String> = if all { disk.list()?.into_iter().map(|e| e.key).collect() } else { keys };
            for k in targets {
                let key = CacheKey::parse(&k).with_context(|| format!("`{k}` is not a cache key (64 hex digits)"))?;
                if !disk.remove(&key)? {
                    eprintln!("no entry {k}");
                }
            }
        }
        CacheCommand::Gc { max_mb } => {
            let (removed, freed) = disk.gc(max_mb * 1_000_000)?;
            println!("removed {removed} files, {:.1} MB", freed as f64 / 1e6);
        }
    }
    Ok(())
}

fn run_inspect(args: InspectArgs) -> Result<()> {
    let report = inspect(&args.folder)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
