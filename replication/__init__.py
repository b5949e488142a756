"""TensorFlow/Keras replication kit for CycleGAN (Zhu et al. 2017), with pix2pix as the paired baseline.

Where each concept of the paper lives:

  c7s1-k, dk, Rk, uk, Ck (§7.2), reflection padding, instance norm   layers.py: c7s1, d, R, u, C
  ResNet-6/9 generators, U-Net, 70x70 PatchGAN, PixelGAN              networks.py
  LSGAN and vanilla GAN losses, cycle, identity, L1 (§3, §4)          losses.py
  history buffer of 50 generated images (§4)                          history.py: HistoryBuffer
  CycleGAN's objective and training step                              cyclegan.py: CycleGAN.train_step
  pix2pix, the paired baseline                                        pix2pix.py: Pix2Pix.train_step
  Adam(2e-4, 0.5, 0.999) as the official code runs it                 gan.py: ReferenceAdam, adam
  constant then linearly decaying learning rate (§4)                  schedule.py: learning_rate
  resize 286, random crop 256, flip; PIL's bicubic                    data/transforms.py: jitter, resize
  pixels in [-1, 1] (level / 127.5 - 1) and back to 8 bits           pixels.py: to_unit, to_uint8
  datasets: TFDS, folders, Cityscapes, pix2pix sets, synthetic        data/
  the source table (adding a source: one file and one row)            data/sources.py: DataSource; choices.py: SOURCES
  the model table (adding a model: one file and one row)              choices.py: MODELS; models.py: Model
  the training loop, checkpoints, exact resume                        training.py, checkpoints.py
  the run folder                                                      runs.py: RunFolder
  exports: float32 .keras files, SavedModels, manifest.json           export.py: export_model
  a run's generators for translate, evaluate, figures                 loading.py: load_generators, Translator
  the official code's .pth files, read without running them          pth.py: read_state_dict
  their networks as the kit's (architecture from the keys)            official.py: network_from
  `replication import`: official models as a run folder               pretrained.py: import_official
  FCN-style scores, MAE/PSNR/SSIM, FID/KID                            metrics.py
  `evaluate`: a run's test split translated and scored                evaluate.py
  FID/KID with InceptionV3 (its weights found or downloaded)          fid.py
  Cityscapes' FCN score (paper Tables 2 and 3)                        segmentation.py: Confusion
  `translate`: images and folders, never overwriting an input         translate.py
  a network within the memory there is: padding, tiles, ramps         tiling.py: translate_whole
  the quality logged while training (eval.csv)                        quality.py: QualityLog
  figures and results pages, the paper's tables                       figures/
  the configuration: base.yaml's keys and their rules                 config.py, choices.py
  one job's strategy, agreed stop and each epoch's batches            jobs.py: Job, epoch_batches
  training on several machines                                        cluster.py
  atomic writes, the run folder's lock, SHA-256, disk trouble         files.py
  the memory a process may take (cgroups, ulimit), failed allocations memory.py
  the command line: flags (cli.py), what each command does            cli.py, commands/
  speed on a given machine (nothing in it changes the numbers)        speed/
"""

__version__ = "0.1.0"
