//! Reading Sinter's files from the ESP the loader itself was started from.

use alloc::string::String;
use alloc::vec::Vec;
use uefi::fs::{FileSystem, Path, PathBuf};
use uefi::{boot, CString16};

use crate::{load_error, LoadError};

pub const KERNEL_PATH: &str = "\\sinter\\kernel.elf";
pub const CLUSTER_CONFIG_PATH: &str = "\\sinter\\cluster.toml";
pub const NODE_CONFIG_PATH: &str = "\\sinter\\node.toml";
pub const PAYLOAD_DIR: &str = "\\sinter\\payload";

pub struct BootFiles {
    pub kernel_elf: Vec<u8>,
    pub cluster_toml: Vec<u8>,
    pub node_toml: Vec<u8>,
    /// (file name, contents) of every file in the payload folder.
    pub payload: Vec<(String, Vec<u8>)>,
}

fn path(text: &str) -> Result<PathBuf, LoadError> {
    let text = CString16::try_from(text).map_err(|_| load_error!("bad path {text}"))?;
    Ok(PathBuf::from(text))
}

pub fn read_boot_files() -> Result<BootFiles, LoadError> {
    let volume = boot::get_image_file_system(boot::image_handle())
        .map_err(|e| load_error!("cannot open the boot volume: {:?}", e.status()))?;
    let mut fs = FileSystem::new(volume);
    let mut read = |name: &str| -> Result<Vec<u8>, LoadError> {
        fs.read(path(name)?.as_ref() as &Path).map_err(|e| load_error!("cannot read {name}: {e:?}"))
    };
    let kernel_elf = read(KERNEL_PATH)?;
    let cluster_toml = read(CLUSTER_CONFIG_PATH)?;
    let node_toml = read(NODE_CONFIG_PATH)?;

    let mut payload = Vec::new();
    let dir = path(PAYLOAD_DIR)?;
    if fs.try_exists(&dir).unwrap_or(false) {
        let entries = fs.read_dir(&dir).map_err(|e| load_error!("cannot list {PAYLOAD_DIR}: {e:?}"))?;
        for entry in entries {
            let info = entry.map_err(|e| load_error!("cannot list {PAYLOAD_DIR}: {e:?}"))?;
            if info.is_directory() {
                continue;
            }
            let name = alloc::string::ToString::to_string(info.file_name());
            let full = alloc::format!("{PAYLOAD_DIR}\\{name}");
            let bytes =
                fs.read(path(&full)?.as_ref() as &Path).map_err(|e| load_error!("cannot read {full}: {e:?}"))?;
            payload.push((name, bytes));
        }
    }
    Ok(BootFiles { kernel_elf, cluster_toml, node_toml, payload })
}
