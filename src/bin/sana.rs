//! `sana`: the headless front end of the engine, for scripts, render farms and reference checks.
//! Machine output goes to stdout, progress and logs to stderr.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use sana::backend::{cpu::Cpu, Tensor};
use sana::engine::dit::{DitInput, DitInputFile, SanaVideoTransformer};
use sana::engine::inspect::inspect;
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
    /// Print what a model folder holds: components, configs, parameter counts, dtypes.
    Inspect(InspectArgs),
}

#[derive(Subcommand)]
enum RunCommand {
    /// The SANA-Video transformer: inputs `hidden_states`, `encoder_hidden_states`, `timestep`
    /// and optionally `encoder_attention_mask` (diffusers names); output `sample`.
    Dit(RunDitArgs),
}

#[derive(Args)]
struct DeviceArgs {
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
}

#[derive(Clone, Copy, ValueEnum)]
enum Device {
    /// The f32 reference backend.
    Cpu,
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
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Args)]
struct InspectArgs {
    /// The model folder.
    folder: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(RunCommand::Dit(args)) => run_dit(args),
        Command::Inspect(args) => run_inspect(args),
    }
}

fn run_dit(args: RunDitArgs) -> Result<()> {
    let Device::Cpu = args.device.device;
    let be = Cpu;
    let started = Instant::now();
    let folder = ModelFolder::new(&args.model)?;
    let model = SanaVideoTransformer::from_folder(&be, &folder)
        .with_context(|| format!("loading the transformer from `{}`", args.model.display()))?;
    eprintln!(
        "loaded transformer: {} layers, D = {}, patch {:?}, {} parameters, on {} ({:.2} s)",
        model.config.num_layers,
        model.config.inner_dim(),
        model.config.patch_size,
        model.parameter_count,
        be.name_for_log(),
        started.elapsed().as_secs_f64()
    );
    let inputs = DitInputFile::open(&args.inputs)?;
    let latent = Tensor::from_host(&be, &inputs.hidden_states.shape, &inputs.hidden_states.data)?;
    let caption = Tensor::from_host(&be, &inputs.encoder_hidden_states.shape, &inputs.encoder_hidden_states.data)?;
    let mask = inputs.encoder_attention_mask.as_ref().map(|m| m.data.as_slice());
    let started = Instant::now();
    let out = model.forward(
        &be,
        &DitInput { latent: &latent, caption: &caption, timesteps: &inputs.timesteps, caption_mask: mask },
    )?;
    let sample = out.to_host(&be)?;
    eprintln!("forward {:?} -> {:?} in {:.3} s", latent.shape(), out.shape(), started.elapsed().as_secs_f64());
    if sample.iter().any(|v| !v.is_finite()) {
        bail!("the forward produced non-finite values; not writing `{}`", args.out.display());
    }
    write_f32(&args.out, &[("sample", out.shape(), &sample)])?;
    println!("{}", args.out.display());
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

trait LogName {
    fn name_for_log(&self) -> String;
}

impl LogName for Cpu {
    fn name_for_log(&self) -> String {
        sana::backend::Backend::name(self)
    }
}
