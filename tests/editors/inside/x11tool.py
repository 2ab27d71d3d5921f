"""Runs *inside* the chroot, under the editor's X display: list windows, take a screenshot.

Why a separate script: the host has no X libraries for the chroot's Xvfb, while the chroot has
libX11 (for listing windows through ctypes, no extra packages) and GDK through python3-gi (for
grabbing pixels and writing a PNG).

    python3 x11tool.py list          -> one JSON object per mapped, named top-level window
    python3 x11tool.py shot OUT.png [X Y W H]
"""

import ctypes
import ctypes.util
import json
import sys

IS_VIEWABLE = 2


class _WindowAttributes(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int),
        ("y", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("border_width", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p),
        ("root", ctypes.c_ulong),
        ("class_", ctypes.c_int),
        ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int),
        ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong),
        ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong),
        ("map_installed", ctypes.c_int),
        ("map_state", ctypes.c_int),
        ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int),
        ("screen", ctypes.c_void_p),
    ]


def list_windows() -> list:
    """Mapped children of the root window that carry a WM_NAME (no window manager runs)."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong] + [ctypes.c_void_p] * 4
    x11.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p]
    x11.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p]
    x11.XFree.argtypes = [ctypes.c_void_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XGetWindowProperty.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong,
                                       ctypes.c_long, ctypes.c_long, ctypes.c_int,
                                       ctypes.c_ulong] + [ctypes.c_void_p] * 5
    display = x11.XOpenDisplay(None)
    if not display:
        raise SystemExit("cannot open display")
    net_wm_name = x11.XInternAtom(display, b"_NET_WM_NAME", 0)
    utf8 = x11.XInternAtom(display, b"UTF8_STRING", 0)

    def title_of(xid: int) -> str:
        """_NET_WM_NAME (UTF-8, set by GTK and Qt), else the legacy Latin-1 WM_NAME."""
        kind, fmt = ctypes.c_ulong(), ctypes.c_int()
        count, after = ctypes.c_ulong(), ctypes.c_ulong()
        data = ctypes.POINTER(ctypes.c_ubyte)()
        x11.XGetWindowProperty(display, xid, net_wm_name, 0, 4096, 0, utf8, ctypes.byref(kind),
                               ctypes.byref(fmt), ctypes.byref(count), ctypes.byref(after),
                               ctypes.byref(data))
        if data:
            text = ctypes.string_at(data, count.value).decode("utf-8", "replace")
            x11.XFree(data)
            if text:
                return text
        name = ctypes.c_char_p()
        x11.XFetchName(display, xid, ctypes.byref(name))
        if not name.value:
            return ""
        text = name.value.decode("latin-1")
        x11.XFree(name)
        return text

    root = x11.XDefaultRootWindow(display)
    root_ret, parent_ret = ctypes.c_ulong(), ctypes.c_ulong()
    children = ctypes.POINTER(ctypes.c_ulong)()
    count = ctypes.c_uint()
    x11.XQueryTree(display, root, ctypes.byref(root_ret), ctypes.byref(parent_ret),
                   ctypes.byref(children), ctypes.byref(count))
    windows = []
    for i in range(count.value):
        xid = children[i]
        attrs = _WindowAttributes()
        x11.XGetWindowAttributes(display, xid, ctypes.byref(attrs))
        title = title_of(xid)
        if attrs.map_state == IS_VIEWABLE and title and attrs.width > 1:
            windows.append({"id": xid, "title": title, "x": attrs.x, "y": attrs.y,
                            "width": attrs.width, "height": attrs.height})
    if children:
        x11.XFree(children)
    return windows


def screenshot(path: str, box: list) -> None:
    import gi

    gi.require_version("Gdk", "3.0")
    from gi.repository import Gdk

    root = Gdk.get_default_root_window()
    x, y, w, h = box or (0, 0, root.get_width(), root.get_height())
    pixbuf = Gdk.pixbuf_get_from_window(root, x, y, w, h)
    pixbuf.savev(path, "png", [], [])


if __name__ == "__main__":
    if sys.argv[1] == "list":
        print(json.dumps(list_windows()))
    else:
        screenshot(sys.argv[2], [int(v) for v in sys.argv[3:7]])
