"""StyleGAN3 synthesis network: ws [N, num_layers + 2, w_dim] -> image [N, img_channels, R, R].

Fourier features (ws[:, 0]) are refined by num_layers alias-free layers (ws[:, 1 .. num_layers]) whose
cutoff, stopband and sampling rate follow models/stylegan3/schedule.py, then ToRGB (ws[:, -1]). There
are no noise inputs, no skip connections and no fixed upsampling path: every resolution change happens
inside ops.filtered_lrelu.
"""

import torch
from torch import nn

from models.stylegan2.architecture import resolve_conv_clamp
from models.stylegan2.synthesis import check_synthesis_input
from models.stylegan3.layers import MAGNITUDE_EMA_BETA, SynthesisInput, SynthesisLayer, ToRGB
from models.stylegan3.schedule import synthesis_schedule


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution] (about [-1, 1]).

    Defaults are config T; config R (see models.stylegan3.generator.CONFIGS) uses conv_kernel=1, twice the
    channels and radial down-sampling filters. Layers whose sampling rate is within the top num_fp16_res
    octaves run in fp16 on CUDA (always fp32 elsewhere); conv_clamp "auto" clamps every layer's
    activations and the ToRGB output to +-256 when num_fp16_res > 0, on any device. The ToRGB output is
    multiplied by output_scale. fused_modconv: True = grouped conv, False = per-sample scaling, None =
    fused for batch 1 only.
    """

    def __init__(
        self,
        w_dim: int = 512,
        img_resolution: int = 256,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        conv_clamp: float | str | None = "auto",
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        magnitude_ema_beta: float = MAGNITUDE_EMA_BETA,
        fused_modconv: bool | None = None,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.output_scale = output_scale
        self.fused_modconv = fused_modconv
        self.bands = synthesis_schedule(
            img_resolution,
            img_channels,
            channel_base,
            channel_max,
            num_layers=num_layers,
            num_critical=num_critical,
            first_cutoff=first_cutoff,
            first_stopband=first_stopband,
            last_stopband_rel=last_stopband_rel,
            margin_size=margin_size,
        )
        clamp = resolve_conv_clamp(conv_clamp, num_fp16_res)
        self.input = SynthesisInput(w_dim, self.bands[0])
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            band_in, band_out = self.bands[max(i - 1, 0)], self.bands[i]
            self.layers.append(
                SynthesisLayer(
                    w_dim,
                    band_in,
                    band_out,
                    conv_kernel=conv_kernel,
                    filter_size=filter_size,
                    lrelu_upsampling=lrelu_upsampling,
                    # Critically sampled layers keep the separable filter, so the image keeps the whole
                    # square spectrum up to Nyquist rather than the inscribed disc.
                    radial_down_filter=use_radial_filters and not band_out.critically_sampled,
                    use_fp16=band_out.sampling_rate * 2**num_fp16_res > img_resolution,
                    conv_clamp=clamp,
                    magnitude_ema_beta=magnitude_ema_beta,
                )
            )
        self.torgb = ToRGB(
            self.bands[-2].channels,
            img_channels,
            w_dim,
            conv_clamp=clamp,
            magnitude_ema_beta=magnitude_ema_beta,
        )
        self.num_ws = num_layers + 2

    def use_fused_modconv(self, ws: torch.Tensor) -> bool:
        """Fused (grouped) modconv for batch 1, per-sample scaling otherwise (as StyleGAN2's network)."""
        return ws.shape[0] == 1 if self.fused_modconv is None else self.fused_modconv

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str | None = None,
        update_emas: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        """update_emas updates the layers' input-magnitude EMAs (training). noise_mode is accepted for
        interface compatibility with StyleGAN2 and ignored: StyleGAN3 has no noise inputs."""
        check_synthesis_input(ws, self.num_ws, self.w_dim)
        fused = self.use_fused_modconv(ws) if fused_modconv is None else fused_modconv
        x = self.input(ws[:, 0])
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i + 1], update_emas, fused)
        x = self.torgb(x, ws[:, -1], update_emas, fused)
        return x.to(ws.dtype) * self.output_scale
