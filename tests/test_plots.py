import matplotlib

matplotlib.use("Agg")

from PIL import Image  # noqa: E402

from peftlab import plots  # noqa: E402


def _drawn(fig):
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    picture = Image.open(buffer).convert("RGB")
    return picture.size[0] > 100 and picture.getpixel((1, 1)) == (255, 255, 255)


def test_plots_draw_on_white():
    def wrapper(input_ids=None, inputs_embeds=None, **kwargs):
        pass

    def model(input_ids=None, pixel_values=None):
        pass

    figures = [
        plots.loss_curves({"a": [3.0, 2.0, 1.0, 0.5, 0.4, 0.3], "b": [1.0, 0.9]}),
        plots.parameter_counts({"full": (100, 100), "lora": (5, 105)}),
        plots.signature_comparison(wrapper, model, "wrapper", "model"),
        plots.image_grid([Image.new("RGB", (8, 8))] * 3, ["x", "y", "z"]),
        plots.bars({"base": 0.5, "lora": 0.9}, "acc", "top-1"),
    ]
    assert all(_drawn(f) for f in figures)


def test_signature_names():
    def f(self, a, *args, b=1, **kwargs):
        pass

    assert plots.signature_names(f) == ["a", "*args", "b", "**kwargs"]
