"""MoE recipe: image + speech data, one shared ``moe_mlp{E}x{k}`` projector against two dense ones."""
