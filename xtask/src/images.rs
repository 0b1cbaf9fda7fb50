//! `cargo xtask image`: one bootable GPT disk image per node.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sinter_config::{ClusterConfig, FileError};
use sinter_image::{EspFile, CLUSTER_CONFIG_PATH, KERNEL_PATH, NODE_CONFIG_PATH, UEFI_BOOT_PATH};

use crate::build::Firmware;

/// A config file, read and validated, with its text kept verbatim so the
/// image carries exactly what the user wrote.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub text: String,
    pub config: ClusterConfig,
}

pub fn load_config(path: &Path) -> Result<LoadedConfig> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: cannot read config: {e}", path.display()))?;
    let config = sinter_config::parse_cluster(&text)
        .map_err(|error| anyhow::anyhow!("{}", FileError { file: path.display().to_string(), error }))?;
    Ok(LoadedConfig { path: path.to_path_buf(), text, config })
}

#[derive(Debug, Clone)]
pub struct NodeImage {
    pub node: u16,
    pub path: PathBuf,
}

/// Extra files to put in `\sinter\payload\` on every node's image.
pub type Payload = Vec<(String, Vec<u8>)>;

/// Writes one image per node into `out`. `node_toml` replaces the generated
/// node selector (tests of the firmware's own checks only).
pub fn write_images(
    config: &LoadedConfig,
    firmware: &Firmware,
    payload: &Payload,
    node_toml: Option<&str>,
    out: &Path,
) -> Result<Vec<NodeImage>> {
    let loader =
        std::fs::read(&firmware.loader_efi).with_context(|| format!("reading {}", firmware.loader_efi.display()))?;
    let kernel =
        std::fs::read(&firmware.kernel_elf).with_context(|| format!("reading {}", firmware.kernel_elf.display()))?;
    let mut images = Vec::new();
    for node in &config.config.nodes {
        let mut files = vec![
            EspFile::new(UEFI_BOOT_PATH, loader.clone()),
            EspFile::new(KERNEL_PATH, kernel.clone()),
            EspFile::new(CLUSTER_CONFIG_PATH, config.text.clone().into_bytes()),
            EspFile::new(
                NODE_CONFIG_PATH,
                match node_toml {
                    Some(text) => text.to_string(),
                    None => format!(
                        "# Which member of cluster `{}` this stick boots.\nnode = {}\n",
                        config.config.cluster.name, node.id
                    ),
                }
                .into_bytes(),
            ),
        ];
        for (name, bytes) in payload {
            files.push(EspFile::new(format!("{}/{name}", sinter_image::PAYLOAD_DIR), bytes.clone()));
        }
        let path = out.join(format!("{}-node{}.img", config.config.cluster.name, node.id));
        let info =
            sinter_image::write_disk_image(&path, &files).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("xtask: node {} image: {} ({} MiB)", node.id, info.path.display(), info.disk_bytes >> 20);
        images.push(NodeImage { node: node.id, path });
    }
    Ok(images)
}
