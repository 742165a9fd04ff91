"""Independent judges, each loaded through its real code path from a tiny stand-in built from config here
(no weights are ever fetched): CLIPScore, PickScore, HPSv2 (CLIP), ImageReward (BLIP), VQAScore (Qwen2.5-VL)."""

import pytest
import torch
from PIL import Image

from benchmarks import judges  # noqa: F401  (registers the judges)
from reward_model.interface import ImageItem, ScoreStatus
from t2i_guidance.registries import available_scorers, build_scorer
from tests.tiny_tokenizers import clip_tokenizer

IMAGES = [ImageItem("red", Image.new("RGB", (32, 32), (220, 30, 30))),
          ImageItem("blue", Image.new("RGB", (32, 32), (40, 70, 220)))]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clip")
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


def test_judges_are_registered_by_name():
    assert {"clipscore", "pickscore", "hpsv2", "imagereward", "vqascore", "oracle"} <= set(available_scorers())


@pytest.mark.parametrize("name", ["clipscore", "pickscore", "hpsv2"])
def test_clip_family_judges_score_alignment_from_a_tiny_clip(tiny_clip, name):
    judge = build_scorer(name, model=tiny_clip, processor=tiny_clip, device="cpu")
    table = judge.score(IMAGES, "a red circle", ["alignment", "technical"])
    red = table["red"]["alignment"]
    assert red.ok and table["blue"]["alignment"].ok
    assert table["red"]["technical"].status is ScoreStatus.ERROR and table["red"]["technical"].score is None
    again = judge.score(IMAGES[:1], "a red circle", ["alignment"])["red"]["alignment"].score
    assert again == pytest.approx(red.score, abs=1e-4)  # same image, same number, alone or in a batch
    cosines = judge.cosines([i.image for i in IMAGES], "a red circle")
    assert cosines[0] != cosines[1]  # it looks at the image
    assert judge.cosines([IMAGES[0].image], "a blue square")[0] != cosines[0]  # and reads the prompt
    if name == "clipscore":
        assert 0.0 <= red.score <= 100.0
    else:
        assert red.score == pytest.approx(judge.logit_scale() * float(cosines[0]), abs=1e-3)


def test_clipscore_is_100_times_the_clipped_cosine(tiny_clip):
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(tiny_clip), CLIPProcessor.from_pretrained(tiny_clip)
    inputs = processor(text=["a red circle"], images=[IMAGES[0].image], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
    cosine = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).item()
    value = build_scorer("clipscore", model=tiny_clip, device="cpu").score(IMAGES[:1], "a red circle", ["alignment"])
    assert value["red"]["alignment"].score == pytest.approx(100 * max(cosine, 0.0), abs=1e-3)


def test_a_judge_without_the_prompt_gives_errors_not_numbers(tiny_clip):
    table = build_scorer("clipscore", model=tiny_clip, device="cpu").score(IMAGES, None, ["alignment"])
    assert all(row["alignment"].status is ScoreStatus.ERROR for row in table.values())


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    from safetensors.torch import save_file
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
    )

    from benchmarks.judges.imagereward import HEAD_FILE, build_reward_head

    folder = tmp_path_factory.mktemp("blip")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "blue", "circle", "square", "on", "white"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    (folder / "vocab.txt").unlink()
    config = BlipConfig(
        text_config={"vocab_size": len(words), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "encoder_hidden_size": 32, "max_position_embeddings": 64},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    save_file(build_reward_head(32).state_dict(), str(folder / HEAD_FILE))
    return str(folder)


def test_imagereward_scores_from_a_tiny_blip(tiny_blip):
    judge = build_scorer("imagereward", model=tiny_blip, device="cpu")
    table = judge.score(IMAGES, "a red circle on white", ["alignment"])
    red, blue = table["red"]["alignment"], table["blue"]["alignment"]
    assert red.ok and blue.ok and red.score != blue.score
    assert judge.score(IMAGES[:1], "a blue square", ["alignment"])["red"]["alignment"].score != red.score


def test_vqascore_is_a_yes_probability_from_a_tiny_qwen_vl(tmp_path):
    from reward_model.tiny_vlm import save_tiny_scorer

    folder = save_tiny_scorer(tmp_path / "vlm", hidden_size=64, num_layers=2, vision_depth=2)
    judge = build_scorer("vqascore", model=str(folder), device="cpu")
    table = judge.score(IMAGES, "a red circle", ["alignment", "aesthetic"])
    values = [table[i.id]["alignment"].score for i in IMAGES]
    assert all(0.0 < v < 1.0 for v in values) and values[0] != values[1]
    assert table["red"]["aesthetic"].status is ScoreStatus.ERROR
