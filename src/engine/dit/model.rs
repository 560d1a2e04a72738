//! SANA-Video transformer forward (MODEL.md §2.2; diffusers 0.42.1
//! `models/transformers/transformer_sana_video.py`, `SanaVideoTransformer3DModel.forward`).

use std::cell::RefCell;
use std::sync::Arc;

use crate::backend::{self as ops, Activation, Backend, Modulation, RopeTables, Tensor, Write};
use crate::engine::weights::{LoadLog, WeightLoader, WeightSource};
use crate::error::{Error, Result};
use crate::io::{ConfigFile, ModelFolder};

use super::block::{Block, BlockScratch};
use super::config::DitConfig;
use super::embed::{rope_tables, timestep_sinusoid};

/// Width of the sinusoidal timestep features.
const TIMESTEP_FEATURES: usize = 256;
/// diffusers `SanaVideoTransformer3DModel.caption_norm` eps.
const CAPTION_NORM_EPS: f32 = 1e-5;
/// The final LayerNorm's eps (hard-coded 1e-6 in diffusers `SanaModulatedNorm`).
const FINAL_NORM_EPS: f32 = 1e-6;
/// Additive score bias diffusers gives padded caption tokens: (1 − mask)·(−10000).
const MASKED_KEY_BIAS: f32 = -10000.0;

/// Timesteps as the reference takes them (raw values in [0, 1000], not sigmas).
#[derive(Clone, Debug)]
pub enum Timesteps {
    /// One per sample: (B,)
    PerSample(Vec<f32>),
    /// One per token: (B, N), used by image-to-video to hold the conditioning frame at t = 0.
    PerToken(Vec<f32>),
}

/// One forward's inputs. `latent` (B, C_in, T, H, W); `caption` (B, L, caption_channels).
pub struct DitInput<'a, B: Backend> {
    pub latent: &'a Tensor<B>,
    pub caption: &'a Tensor<B>,
    pub timesteps: &'a Timesteps,
    /// (B, L) with 1 = keep, 0 = padding (values in between are allowed, as in diffusers).
    pub caption_mask: Option<&'a [f32]>,
}

pub struct SanaVideoTransformer<B: Backend> {
    pub config: DitConfig,
    patch_embedding: Tensor<B>,      // (D, C_in·pt·ph·pw)
    patch_embedding_bias: Tensor<B>, // (D)
    time_linear_1: Tensor<B>,        // (D, 256)
    time_linear_1_bias: Tensor<B>,
    time_linear_2: Tensor<B>, // (D, D)
    time_linear_2_bias: Tensor<B>,
    time_modulation: Tensor<B>, // (6D, D)
    time_modulation_bias: Tensor<B>,
    caption_linear_1: Tensor<B>, // (D, caption_channels)
    caption_linear_1_bias: Tensor<B>,
    caption_linear_2: Tensor<B>, // (D, D)
    caption_linear_2_bias: Tensor<B>,
    caption_norm: Tensor<B>,
    blocks: Vec<Block<B>>,
    final_scale_shift_table: Tensor<B>, // (2, D)
    proj_out: Tensor<B>,                // (pt·ph·pw·C_out, D)
    proj_out_bias: Tensor<B>,
    /// Number of parameters loaded (equals the checkpoint's for a complete load).
    pub parameter_count: usize,
    /// The uploaded RoPE tables of the last token grid: a sampler runs every step on one grid,
    /// and building them per forward kept the GPU waiting on the host (see `rope`).
    rope_cache: parking_lot::Mutex<Option<GridRope<B>>>,
}

/// A token grid (T', H', W') and its uploaded RoPE tables.
type GridRope<B> = ([usize; 3], Arc<RopeTables<B>>);

impl<B: Backend> SanaVideoTransformer<B> {
    /// Loads `transformer/` of a model folder (or a bare transformer folder).
    pub fn from_folder(be: &B, folder: &ModelFolder) -> Result<Self> {
        let config = DitConfig::from_file(&folder.component_config("transformer")?)?;
        let files = folder.component_weights("transformer")?;
        Self::load(be, config, &WeightSource::Files(files))
    }

    /// A model at `config_path`'s architecture with seeded random weights (real-size benchmarks
    /// and checks without a checkpoint).
    pub fn random(be: &B, config_path: &std::path::Path, seed: u64) -> Result<Self> {
        let config = DitConfig::from_file(&ConfigFile::open(config_path)?)?;
        Self::load(be, config, &WeightSource::Random { seed })
    }

    pub fn load(be: &B, config: DitConfig, source: &WeightSource) -> Result<Self> {
        let log = RefCell::new(LoadLog::default());
        let w = WeightLoader::new(be, source, &log);
        let d = config.inner_dim();
        let [pt, ph, pw] = config.patch_size;
        let cin = config.in_channels;
        let te = w.pp("time_embed");
        let cp = w.pp("caption_projection");
        let blocks = (0..config.num_layers)
            .map(|i| Block::load(&w.pp(format!("transformer_blocks.{i}")), &config))
            .collect::<Result<Vec<_>>>()?;
        let model = SanaVideoTransformer {
            // Conv3d with stride = kernel = patch is a matrix product over patchified features.
            patch_embedding: w.tensor_as("patch_embedding.weight", &[d, cin, pt, ph, pw], &[d, cin * pt * ph * pw])?,
            patch_embedding_bias: w.tensor("patch_embedding.bias", &[d])?,
            time_linear_1: te.tensor("emb.timestep_embedder.linear_1.weight", &[d, TIMESTEP_FEATURES])?,
            time_linear_1_bias: te.tensor("emb.timestep_embedder.linear_1.bias", &[d])?,
            time_linear_2: te.tensor("emb.timestep_embedder.linear_2.weight", &[d, d])?,
            time_linear_2_bias: te.tensor("emb.timestep_embedder.linear_2.bias", &[d])?,
            time_modulation: te.tensor("linear.weight", &[6 * d, d])?,
            time_modulation_bias: te.tensor("linear.bias", &[6 * d])?,
            caption_linear_1: cp.tensor("linear_1.weight", &[d, config.caption_channels])?,
            caption_linear_1_bias: cp.tensor("linear_1.bias", &[d])?,
            caption_linear_2: cp.tensor("linear_2.weight", &[d, d])?,
            caption_linear_2_bias: cp.tensor("linear_2.bias", &[d])?,
            caption_norm: w.tensor("caption_norm.weight", &[d])?,
            blocks,
            final_scale_shift_table: w.tensor("scale_shift_table", &[2, d])?,
            proj_out: w.tensor("proj_out.weight", &[config.patch_volume() * config.out_channels, d])?,
            proj_out_bias: w.tensor("proj_out.bias", &[config.patch_volume() * config.out_channels])?,
            parameter_count: 0,
            rope_cache: Default::default(),
            config,
        };
        let log = log.into_inner();
        if let WeightSource::Files(files) = source {
            crate::engine::weights::check_no_unknown_tensors(files, &log)?;
        }
        Ok(SanaVideoTransformer { parameter_count: log.parameters, ..model })
    }

    /// The RoPE tables of a token grid on `be`, built and uploaded once per grid: building them
    /// on the host (4.3 MB at 720p, 14.7 MB at 480p) and uploading them before every forward,
    /// with the GPU idle until they were there, cost about as much as two transformer blocks.
    fn rope(&self, be: &B, grid: [usize; 3]) -> Result<Arc<RopeTables<B>>> {
        let mut cache = self.rope_cache.lock();
        if let Some((cached, tables)) = cache.as_ref() {
            if *cached == grid {
                return Ok(tables.clone());
            }
        }
        let (cos, sin) = rope_tables(self.config.attention_head_dim, grid);
        let tables = Arc::new(RopeTables { cos: be.upload_table(cos)?, sin: be.upload_table(sin)? });
        *cache = Some((grid, tables.clone()));
        Ok(tables)
    }

    /// The flow velocity (B, C_out, T, H, W) for one set of inputs.
    pub fn forward(&self, be: &B, input: &DitInput<B>) -> Result<Tensor<B>> {
        let cfg = &self.config;
        let d = cfg.inner_dim();
        let [b, cin, t, h, w] = *input.latent.shape() else {
            return Err(input_error("hidden_states", "(B, C, T, H, W)", input.latent.shape()));
        };
        if cin != cfg.in_channels {
            return Err(input_error(
                "hidden_states",
                &format!("{} channels (config in_channels)", cfg.in_channels),
                input.latent.shape(),
            ));
        }
        let [pt, ph, pw] = cfg.patch_size;
        if t % pt != 0 || h % ph != 0 || w % pw != 0 {
            return Err(input_error(
                "hidden_states",
                &format!("T, H, W multiples of the patch {:?}", cfg.patch_size),
                input.latent.shape(),
            ));
        }
        let grid = [t / pt, h / ph, w / pw];
        let n: usize = grid.iter().product();
        if grid.iter().any(|&g| g > cfg.rope_max_seq_len) {
            return Err(input_error(
                "hidden_states",
                &format!("at most {} latent positions per axis (rope_max_seq_len)", cfg.rope_max_seq_len),
                input.latent.shape(),
            ));
        }
        let [cb, l, cc] = *input.caption.shape() else {
            return Err(input_error("encoder_hidden_states", "(B, L, caption_channels)", input.caption.shape()));
        };
        if cb != b || cc != cfg.caption_channels || l == 0 {
            return Err(input_error(
                "encoder_hidden_states",
                &format!("({b}, L >= 1, {})", cfg.caption_channels),
                input.caption.shape(),
            ));
        }

        // 1. RoPE tables from the token grid
        let rope = self.rope(be, grid)?;

        // 2. patch embedding: (B, C, T, H, W) → (B, N, C·pt·ph·pw) → (B, N, D)
        let mut patches = Tensor::empty(be, &[b, n, cin * cfg.patch_volume()])?;
        ops::patchify(be, &mut patches, input.latent, cfg.patch_size)?;
        let mut x = Tensor::empty(be, &[b, n, d])?;
        ops::linear(
            be,
            &mut x,
            &patches,
            &self.patch_embedding,
            Some(&self.patch_embedding_bias),
            Activation::Identity,
            Write::Overwrite,
        )?;
        drop(patches);

        // 3. timestep embedding (adaLN-single): temb = linear_2(SiLU(linear_1(sinusoid(t))));
        //    mod = linear(SiLU(temb)), (B·M, 6D) with M = 1 or N
        let (t_values, per_token) = match input.timesteps {
            Timesteps::PerSample(v) if v.len() == b => (v, false),
            Timesteps::PerToken(v) if v.len() == b * n => (v, true),
            Timesteps::PerSample(v) | Timesteps::PerToken(v) => {
                return Err(input_error(
                    "timestep",
                    &format!("{b} (per sample) or {} (per token) values", b * n),
                    &[v.len()],
                ))
            }
        };
        let rows = t_values.len();
        let sinus = Tensor::from_vec(be, &[rows, TIMESTEP_FEATURES], timestep_sinusoid(t_values))?;
        let mut t_hidden = Tensor::empty(be, &[rows, d])?;
        ops::linear(
            be,
            &mut t_hidden,
            &sinus,
            &self.time_linear_1,
            Some(&self.time_linear_1_bias),
            Activation::Silu,
            Write::Overwrite,
        )?;
        let mut temb = Tensor::empty(be, &[rows, d])?;
        ops::linear(
            be,
            &mut temb,
            &t_hidden,
            &self.time_linear_2,
            Some(&self.time_linear_2_bias),
            Activation::Identity,
            Write::Overwrite,
        )?;
        ops::activation(be, &mut t_hidden, &temb, Activation::Silu)?;
        let mut mod_emb = Tensor::empty(be, &[rows, 6 * d])?;
        ops::linear(
            be,
            &mut mod_emb,
            &t_hidden,
            &self.time_modulation,
            Some(&self.time_modulation_bias),
            Activation::Identity,
            Write::Overwrite,
        )?;

        // 4. caption: RMSNorm(linear_2(GELU_tanh(linear_1(y)))), (B, L, D)
        let mut cap_hidden = Tensor::empty(be, &[b, l, d])?;
        ops::linear(
            be,
            &mut cap_hidden,
            input.caption,
            &self.caption_linear_1,
            Some(&self.caption_linear_1_bias),
            Activation::GeluTanh,
            Write::Overwrite,
        )?;
        let mut cap_proj = Tensor::empty(be, &[b, l, d])?;
        ops::linear(
            be,
            &mut cap_proj,
            &cap_hidden,
            &self.caption_linear_2,
            Some(&self.caption_linear_2_bias),
            Activation::Identity,
            Write::Overwrite,
        )?;
        let mut caption = cap_hidden;
        ops::rms_norm(be, &mut caption, &cap_proj, &self.caption_norm, CAPTION_NORM_EPS)?;
        drop(cap_proj);

        let key_bias = match input.caption_mask {
            None => vec![0.0; b * l],
            Some(m) if m.len() == b * l => m.iter().map(|&keep| (1.0 - keep) * MASKED_KEY_BIAS).collect(),
            Some(m) => {
                return Err(input_error("encoder_attention_mask", &format!("{b}x{l} values (B, L)"), &[m.len()]))
            }
        };
        let key_bias = be.upload_table(key_bias)?;

        // 5. blocks
        let mut scratch = BlockScratch::new(be, cfg, b, n, l)?;
        for block in &self.blocks {
            block.forward(be, &mut x, &mod_emb, per_token, &caption, &key_bias, &rope, grid, &mut scratch)?;
        }
        drop(scratch);

        // 6. final layer: LN(x)·(1 + sst[1] + temb) + sst[0] + temb, then proj_out
        let m = Modulation { table: &self.final_scale_shift_table, emb: &temb, emb_chunks: 1, per_token };
        let mut normed = Tensor::empty(be, &[b, n, d])?;
        ops::ada_layer_norm(be, &mut normed, &x, &m, 0, 1, FINAL_NORM_EPS)?;
        let mut out_tokens = Tensor::empty(be, &[b, n, cfg.patch_volume() * cfg.out_channels])?;
        ops::linear(
            be,
            &mut out_tokens,
            &normed,
            &self.proj_out,
            Some(&self.proj_out_bias),
            Activation::Identity,
            Write::Overwrite,
        )?;

        // 7. unpatchify: (B, N, pt·ph·pw·C_out) → (B, C_out, T, H, W)
        let mut out = Tensor::empty(be, &[b, cfg.out_channels, t, h, w])?;
        ops::unpatchify(be, &mut out, &out_tokens, cfg.patch_size)?;
        Ok(out)
    }
}

fn input_error(name: &str, expected: &str, got: &[usize]) -> Error {
    Error::InputShape { name: name.to_string(), expected: expected.to_string(), got: format!("{got:?}") }
}
