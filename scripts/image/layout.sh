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
