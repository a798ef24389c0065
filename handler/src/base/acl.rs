//! Granting one user read access to a file through a POSIX access ACL,
//! written directly as the kernel's `system.posix_acl_access` attribute
//! (no libacl needed). Used so that a user can read the core of their own
//! crashed process while the file stays owned by root, mode 0600.

use std::io;
use std::os::fd::AsFd;

const XATTR_NAME: &str = "system.posix_acl_access";
const ACL_EA_VERSION: u32 = 2;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

const READ: u16 = 4;
const WRITE: u16 = 2;

/// The attribute value for: owner read-write, `uid` read, nobody else.
pub fn read_for_user(uid: u32) -> Vec<u8> {
    // Entries must be sorted by tag, then by id.
    let entries = [
        (ACL_USER_OBJ, READ | WRITE, ACL_UNDEFINED_ID),
        (ACL_USER, READ, uid),
        (ACL_GROUP_OBJ, 0, ACL_UNDEFINED_ID),
        (ACL_MASK, READ, ACL_UNDEFINED_ID),
        (ACL_OTHER, 0, ACL_UNDEFINED_ID),
    ];
    let mut value = ACL_EA_VERSION.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        value.extend_from_slice(&tag.to_le_bytes());
        value.extend_from_slice(&perm.to_le_bytes());
        value.extend_from_slice(&id.to_le_bytes());
    }
    value
}

/// Lets `uid` read the open file `fd`.
pub fn grant_read(fd: impl AsFd, uid: u32) -> io::Result<()> {
    rustix::fs::fsetxattr(
        fd,
        XATTR_NAME,
        &read_for_user(uid),
        rustix::fs::XattrFlags::empty(),
    )?;
    Ok(())
}

/// The users an access ACL on `fd` grants read to (empty when it has none).
pub fn users_with_read(fd: impl AsFd) -> io::Result<Vec<u32>> {
    let mut buffer = vec![0u8; 4096];
    let length = match rustix::fs::fgetxattr(fd, XATTR_NAME, &mut buffer[..]) {
        Ok(length) => length,
        Err(rustix::io::Errno::NODATA) => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let value = &buffer[..length];
    let mut users = Vec::new();
    for entry in value.get(4..).unwrap_or_default().chunks_exact(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let perm = u16::from_le_bytes([entry[2], entry[3]]);
        let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        if tag == ACL_USER && perm & READ != 0 {
            users.push(id);
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn attribute_layout() {
        let value = read_for_user(1000);
        assert_eq!(value.len(), 4 + 5 * 8);
        assert_eq!(&value[..4], &[2, 0, 0, 0]);
        assert_eq!(&value[12..20], &[2, 0, 4, 0, 0xe8, 0x03, 0, 0]);
    }

    #[test]
    fn granted_user_is_listed_and_others_get_nothing() {
        let dir = std::env::temp_dir().join(format!("handler-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("core");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(users_with_read(&file).unwrap(), Vec::<u32>::new());
        grant_read(&file, 4242).unwrap();
        assert_eq!(users_with_read(&file).unwrap(), vec![4242]);
        // The group bits show the mask; "other" stays without access.
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
