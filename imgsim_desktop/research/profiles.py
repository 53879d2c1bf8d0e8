"""The perturbation profiles: what each kind of edited copy is called. Shared by the experiment
(research.perturb) and its chart (research.chart), which therefore do not import each other."""

PROFILES = ("jpeg", "rescale", "crop", "colour_blur", "rotate_overlay")
PROFILE_TITLES = {
    "jpeg": "JPEG recompression",
    "rescale": "downscale + upscale",
    "crop": "crop",
    "colour_blur": "colour/brightness + blur",
    "rotate_overlay": "rotation + overlay",
}
