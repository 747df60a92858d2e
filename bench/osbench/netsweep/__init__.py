"""Parts of the `netsweep` kind: traffic-tool output parsers and the sweep."""
