"""The node canvas: items (ports, nodes, wires), the scene mirroring one network, the view."""

from .items import MIME_CLIP, MIME_NODE, NodeItem, PortItem, WireItem
from .scene import CanvasScene, block_instance, clipboard_mime
from .view import CanvasView

__all__ = ["MIME_CLIP", "MIME_NODE", "CanvasScene", "CanvasView", "NodeItem", "PortItem",
           "WireItem", "block_instance", "clipboard_mime"]
