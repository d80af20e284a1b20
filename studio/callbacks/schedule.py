"""When a kimg-scheduled event fires."""


def crossed(prev_nimg: int, cur_nimg: int, every_kimg: float | None) -> bool:
    """True when a multiple of `every_kimg` thousand images lies in (prev_nimg, cur_nimg]."""
    if not every_kimg or every_kimg <= 0:
        return False
    period = every_kimg * 1000
    return int(cur_nimg // period) > int(prev_nimg // period)


def step_crossed(pl_module, every_kimg: float | None) -> bool:
    """True when the training step that just ended (one global batch) crossed a multiple of every_kimg."""
    return crossed(pl_module.cur_nimg - pl_module.batch_size, pl_module.cur_nimg, every_kimg)


def kimg_tag(nimg: int) -> str:
    """File-name tag of a training position, sortable: 12345 images -> '000012.345'."""
    return f"{nimg / 1000:010.3f}"
