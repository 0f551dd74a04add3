# The image layout, shared by customize.sh, assemble.sh and the tests' reading
# of them (sourced). MBR: the Pi firmware reads the first FAT partition.
HOSTNAME_=edge-relay
DISK_ID=ed6e1a70
BOOT_PARTUUID=$DISK_ID-01
ROOT_PARTUUID=$DISK_ID-02
BOOT_LABEL=EDGE_BOOT
ROOT_LABEL=EDGE_ROOT
BOOT_START_MIB=4
BOOT_SIZE_MIB=256
# Free space left on the root file system for the queue and mailboxes
ROOT_FREE_MIB=768

# The file systems by partition id, so the card boots in any slot or USB
# adapter; noatime: reads do not turn into card writes
write_fstab() {
  cat >"$1" <<FSTAB
# <file system>          <mount point>   <type> <options>                <dump> <pass>
PARTUUID=$ROOT_PARTUUID  /               ext4   defaults,noatime         0      1
PARTUUID=$BOOT_PARTUUID  /boot/firmware  vfat   defaults,noatime,umask=022  0   2
FSTAB
}
