"""Why an nfcpy reader works or not: structured findings for ``contactless selftest``.

:func:`diagnose` lists the USB devices nfcpy has a driver for and, for each, says whether
it can be opened, and if not, why and what to do: the OS denies access (a udev rule or a
group fixes it), a kernel driver holds it (``pn533_usb``, ``port100``: unload and
blacklist it), a user-space program holds it (pcscd, for the ACR122U), libusb is missing.
Explicit nfcpy paths (``tty:USB0:pn532``, ``udp:127.0.0.1:54321``) are tried by opening
them. Nothing is printed; the caller renders the findings.

The OS is reached only through a :class:`SystemProbe`, so the self-test can be exercised
with a fake one (no USB hardware is needed to test the reasoning).
"""

from __future__ import annotations

import enum
import errno
import grp
import os
import pwd
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "BLACKLIST_FILE",
    "SUPPORTED_USB",
    "UDEV_RULES_FILE",
    "Finding",
    "FindingKind",
    "SupportedDevice",
    "SystemProbe",
    "UsbDevice",
    "busy_remedy",
    "diagnose",
    "libusb_missing",
    "permission_remedy",
]


class FindingKind(enum.Enum):
    """What was found about one reader (or about the nfcpy backend as a whole)."""

    FOUND = "found"  # usable
    NOT_FOUND = "not-found"  # no supported device
    PERMISSION = "permission"  # the OS denies access to the device node
    BUSY = "busy"  # a kernel driver or another program holds it
    LIBUSB_MISSING = "libusb-missing"  # the libusb-1.0 shared library cannot be loaded
    NFCPY_MISSING = "nfcpy-missing"  # the nfc extra is not installed
    ERROR = "error"  # it failed to open for another reason


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosis: ``kind``, the nfcpy ``path`` (``usb:001:004``) and device name when
    known, what was seen (``message``) and what to do (``remedy``)."""

    kind: FindingKind
    message: str
    path: str | None = None
    device: str | None = None
    remedy: str | None = None
    kernel_driver: str | None = None

    @property
    def ok(self) -> bool:
        """True when the reader is usable."""
        return self.kind is FindingKind.FOUND

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``kind`` as its string value)."""
        data = asdict(self)
        data["kind"] = self.kind.value
        return data


@dataclass(frozen=True, slots=True)
class SupportedDevice:
    """A USB reader nfcpy drives: its name, nfcpy driver module and the Linux kernel
    driver that grabs it first when loaded (None: no in-kernel driver claims it)."""

    name: str
    nfcpy_driver: str
    kernel_driver: str | None


#: (vendor id, product id) -> device; nfcpy 1.0.4's ``usb_device_map`` with names, and
#: the ids in the kernel's pn533_usb and port100 tables.
SUPPORTED_USB: dict[tuple[int, int], SupportedDevice] = {
    (0x054C, 0x0193): SupportedDevice("Sony PN531", "pn531", None),
    (0x04CC, 0x0531): SupportedDevice("Philips PN531 / SCM SCL3710", "pn531", None),
    (0x04CC, 0x2533): SupportedDevice("NXP PN533 demo board", "pn533", "pn533_usb"),
    (0x04E6, 0x5591): SupportedDevice("SCM SCL3711", "pn533", "pn533_usb"),
    (0x04E6, 0x5593): SupportedDevice("SCM SCL3712", "pn533", None),
    (0x054C, 0x02E1): SupportedDevice("Sony RC-S330/360/370", "rcs956", "pn533_usb"),
    (0x054C, 0x06C1): SupportedDevice("Sony RC-S380", "rcs380", "port100"),
    (0x054C, 0x06C3): SupportedDevice("Sony RC-S380", "rcs380", "port100"),
    (0x072F, 0x2200): SupportedDevice("ACS ACR122U", "acr122", "pn533_usb"),
}

#: The Linux NFC kernel drivers that claim nfcpy's readers ("nfc" is their core module).
KERNEL_NFC_DRIVERS = ("pn533_usb", "port100", "nfc")
UDEV_RULES_FILE = "/etc/udev/rules.d/60-contactless-nfc.rules"
BLACKLIST_FILE = "/etc/modprobe.d/blacklist-nfc.conf"
#: The sysfs name of the kernel's generic user-space USB access: a program (pcscd for
#: CCID readers like the ACR122U) has claimed the device through libusb.
USERSPACE_DRIVER = "usbfs"
LIBUSB_PACKAGE = "libusb-1.0-0"


def permission_remedy(vid: int | None = None, pid: int | None = None) -> str:
    """How to give the current user access to a USB reader (a udev rule and a group)."""
    match = 'SUBSYSTEM=="usb"'
    if vid is not None:
        match += f', ATTRS{{idVendor}}=="{vid:04x}"'
    if pid is not None:
        match += f', ATTRS{{idProduct}}=="{pid:04x}"'
    return (
        f'add the udev rule \'{match}, GROUP="plugdev", MODE="0660"\' to '
        f"{UDEV_RULES_FILE}, run 'sudo udevadm control --reload && sudo udevadm trigger', "
        "add yourself to the group with 'sudo usermod -aG plugdev $USER' and log in again, "
        "then replug the reader"
    )


def busy_remedy(driver: str | None) -> str:
    """How to free a reader another driver holds (``driver`` as sysfs names it)."""
    if driver == USERSPACE_DRIVER:
        return (
            "another program holds the reader through libusb, usually pcscd for an ACR122U: "
            "stop it with 'sudo systemctl stop pcscd.socket pcscd', or use the pcsc: "
            "scheme for this reader instead"
        )
    drivers = [driver] if driver else list(KERNEL_NFC_DRIVERS[:2])
    # modprobe -r also removes the now unused pn533 and nfc core modules under it.
    unload = " ".join(drivers)
    blacklist = "; ".join(f"echo 'blacklist {name}'" for name in drivers)
    return (
        f"the kernel NFC driver ({' or '.join(drivers)}) holds the reader: unload it with "
        f"'sudo modprobe -r {unload}' and stop it coming back with "
        f'"({blacklist}) | sudo tee -a {BLACKLIST_FILE}", then replug the reader'
    )


def libusb_missing(error: BaseException) -> bool:
    """True when ``error`` says the libusb-1.0 shared library cannot be loaded."""
    return isinstance(error, OSError) and "libusb" in str(error).lower()


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """A USB device as the bus lists it."""

    vid: int
    pid: int
    bus: int
    address: int

    @property
    def path(self) -> str:
        """The nfcpy path that opens exactly this device: ``usb:BUS:ADDRESS``."""
        return f"usb:{self.bus:03d}:{self.address:03d}"

    @property
    def devnode(self) -> str:
        """The Linux device node, ``/dev/bus/usb/BUS/ADDRESS``."""
        return f"/dev/bus/usb/{self.bus:03d}/{self.address:03d}"


class SystemProbe:
    """The OS as :func:`diagnose` sees it: USB enumeration (via libusb), device node
    access, sysfs driver bindings, and opening an nfcpy path. Tests substitute a subclass.
    """

    def usb_devices(self) -> list[UsbDevice]:
        """Every USB device on the bus. Raises ImportError without usb1 (nfcpy's
        dependency) and OSError when libusb-1.0 cannot be loaded."""
        import usb1  # type: ignore[import-untyped]

        with usb1.USBContext() as context:
            return [
                UsbDevice(
                    device.getVendorID(),
                    device.getProductID(),
                    device.getBusNumber(),
                    device.getDeviceAddress(),
                )
                for device in context.getDeviceList(skip_on_error=True)
            ]

    def can_access(self, device: UsbDevice) -> bool:
        """True when this process may read and write the device node."""
        if not os.path.exists(device.devnode):
            return True  # not Linux-style device nodes: nothing to tell in advance
        return os.access(device.devnode, os.R_OK | os.W_OK)

    def kernel_driver(self, device: UsbDevice) -> str | None:
        """The driver bound to the device's first interface, from sysfs (or None)."""
        root = "/sys/bus/usb/devices"
        try:
            entries = os.listdir(root)
        except OSError:
            return None
        for entry in entries:
            if ":" in entry or entry.startswith("usb"):
                continue
            try:
                with (
                    open(f"{root}/{entry}/busnum") as busnum,
                    open(f"{root}/{entry}/devnum") as devnum,
                ):
                    found = (int(busnum.read()), int(devnum.read()))
            except (OSError, ValueError):
                continue
            if found == (device.bus, device.address):
                try:
                    return os.path.basename(os.readlink(f"{root}/{entry}:1.0/driver"))
                except OSError:
                    return None
        return None

    def node_owner(self, device: UsbDevice) -> tuple[str, str] | None:
        """(user, group) owning the device node, for the message; None when unknown."""
        try:
            info = os.stat(device.devnode)
            return pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
        except (OSError, KeyError):
            return None

    def open_path(self, path: str) -> str:
        """Open ``path`` with nfcpy and close it again; return the device description.

        Raises what nfcpy raises (OSError with an errno, ImportError...).
        """
        from .nfc import import_nfcpy

        nfc = import_nfcpy()
        clf = nfc.ContactlessFrontend()
        try:
            if not clf.open(path):
                raise OSError(errno.ENODEV, f"no nfcpy device at {path}")
            return str(clf.device)
        finally:
            clf.close()


def diagnose(
    paths: Sequence[str] = (),
    *,
    probe: SystemProbe | None = None,
    open_devices: bool = True,
) -> list[Finding]:
    """Look for nfcpy readers and say, for each, whether it is usable and if not why.

    Scans USB for the devices in :data:`SUPPORTED_USB`; each of ``paths`` (nfcpy device
    paths such as ``tty:USB0:pn532`` or ``udp:127.0.0.1:54321``) is also tried.
    ``open_devices`` false skips opening (only enumeration, access and sysfs checks).
    Always returns at least one finding; never raises for a broken system.
    """
    probe = probe or SystemProbe()
    findings = _scan_usb(probe, open_devices)
    for path in paths:
        findings.append(_try_path(probe, path, device=None))
    if not findings:
        findings.append(
            Finding(
                FindingKind.NOT_FOUND,
                "no USB reader that nfcpy supports is connected",
                remedy="plug in a supported reader (ACR122U, RC-S380, SCL3711, PN533...) "
                "and check that `lsusb` lists it",
            )
        )
    return findings


def _scan_usb(probe: SystemProbe, open_devices: bool) -> list[Finding]:
    try:
        devices = probe.usb_devices()
    except ImportError as error:
        return [
            Finding(
                FindingKind.NFCPY_MISSING,
                f"nfcpy or its USB layer cannot be imported ({error})",
                remedy="install the extra: pip install 'contactless[nfc]'",
            )
        ]
    except OSError as error:
        if libusb_missing(error):
            return [
                Finding(
                    FindingKind.LIBUSB_MISSING,
                    f"the libusb-1.0 library cannot be loaded ({error})",
                    remedy=f"install it: sudo apt install {LIBUSB_PACKAGE}",
                )
            ]
        return [Finding(FindingKind.ERROR, f"cannot list USB devices: {error}")]
    findings = []
    for device in devices:
        supported = SUPPORTED_USB.get((device.vid, device.pid))
        if supported is not None:
            findings.append(_check_usb(probe, device, supported, open_devices))
    return findings


def _check_usb(
    probe: SystemProbe, device: UsbDevice, supported: SupportedDevice, open_devices: bool
) -> Finding:
    name = f"{supported.name} (usb {device.vid:04x}:{device.pid:04x})"
    if not probe.can_access(device):
        owner = probe.node_owner(device)
        whose = f", owned by {owner[0]}:{owner[1]}" if owner else ""
        return Finding(
            FindingKind.PERMISSION,
            f"{name} at {device.path}: no read/write access to {device.devnode}{whose}",
            path=device.path,
            device=name,
            remedy=permission_remedy(device.vid, device.pid),
        )
    driver = probe.kernel_driver(device)
    if driver is not None:
        return Finding(
            FindingKind.BUSY,
            f"{name} at {device.path} is held by the '{driver}' driver",
            path=device.path,
            device=name,
            remedy=busy_remedy(driver),
            kernel_driver=driver,
        )
    if not open_devices:
        return Finding(FindingKind.FOUND, f"{name} at {device.path}", device.path, name)
    return _try_path(probe, device.path, device=name, vid_pid=(device.vid, device.pid))


def _try_path(
    probe: SystemProbe,
    path: str,
    *,
    device: str | None,
    vid_pid: tuple[int, int] | None = None,
) -> Finding:
    try:
        description = probe.open_path(path)
    except ImportError as error:
        return Finding(
            FindingKind.NFCPY_MISSING,
            f"nfcpy cannot be imported ({error})",
            path=path,
            remedy="install the extra: pip install 'contactless[nfc]'",
        )
    except Exception as error:  # a diagnosis reports every failure, it never raises
        return _open_failure(path, device, vid_pid, error)
    return Finding(FindingKind.FOUND, f"{description}", path=path, device=device or description)


def _open_failure(
    path: str, device: str | None, vid_pid: tuple[int, int] | None, error: BaseException
) -> Finding:
    code = getattr(error, "errno", None)
    vid, pid = vid_pid if vid_pid else (None, None)
    known = SUPPORTED_USB.get(vid_pid) if vid_pid else None
    where = f"{device} at {path}" if device else path
    if libusb_missing(error):
        return Finding(
            FindingKind.LIBUSB_MISSING,
            f"{where}: the libusb-1.0 library cannot be loaded ({error})",
            path=path,
            device=device,
            remedy=f"install it: sudo apt install {LIBUSB_PACKAGE}",
        )
    if code in (errno.EACCES, errno.EPERM):
        return Finding(
            FindingKind.PERMISSION,
            f"{where}: permission denied",
            path=path,
            device=device,
            remedy=permission_remedy(vid, pid),
        )
    if code == errno.EBUSY:
        driver = known.kernel_driver if known else None
        return Finding(
            FindingKind.BUSY,
            f"{where} is busy: a kernel driver or another program holds it",
            path=path,
            device=device,
            remedy=busy_remedy(driver),
            kernel_driver=driver,
        )
    if code in (errno.ENODEV, errno.ENOENT):
        return Finding(
            FindingKind.NOT_FOUND,
            f"no reader at {where}",
            path=path,
            device=device,
            remedy="check the cable and the path (nfcpy paths: usb, usb:VID:PID, "
            "tty:USB0:pn532, udp:HOST:PORT)",
        )
    return Finding(
        FindingKind.ERROR,
        f"{where} failed to open: {type(error).__name__}: {error}",
        path=path,
        device=device,
    )
