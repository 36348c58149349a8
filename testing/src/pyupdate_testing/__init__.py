"""pyupdate's test harness, shared by tests/ and bench/.

server           a throwaway `pyupdate-server serve` (plain or TLS) and its management API
host_device      a host-mode device: slots are files, the env is a real U-Boot/GRUB env file
bootloader_sim   plays the bootloader on that env between agent runs
daemon_device    a host-mode device running `pyupdate daemon` against a server
fake_device_api  the device API played by an in-process HTTP server, to misbehave on purpose
proxies          a byte-counting TCP proxy and an HTTP (CONNECT) proxy on loopback
pki              a private CA and a server certificate for 127.0.0.1
device_keys      device keys and auth-request signatures as the Mender client makes them
artifacts        module-image artifacts written with pyupdate's own writer
full_disk        a small tmpfs to fill, for full-disk tests
wait             poll until something is true, or fail naming what never happened

The QEMU harness is not here: it ships with the build-host tools as `pyupdate-qemu-test`.
"""
