"""Reference-side helper of common.deberta_classifier: writes a random-weight DeBERTa-v3-base-sized classifier.

Run by the reference interpreter (.venv-ref: torch + transformers + sentencepiece) so kbert's side never imports
torch. Reads {"dest": folder, "seed": int} as JSON on stdin; writes to "dest" a DebertaV2ForSequenceClassification
with microsoft/deberta-v3-base's config (hidden 768, 12 layers, 12 heads, intermediate 3072, vocabulary 128,100,
256 position buckets, shared attention keys, p2c|c2p, LayerNorm on the relative embeddings, no absolute positions,
no token types) and 2 labels, weights from transformers' own initialisation under torch.manual_seed(seed), and a
DebertaV2TokenizerFast over an 8,000-piece Unigram spm.model trained here on SST-2 (the real 128k model cannot be
downloaded; the embedding table keeps deberta-v3-base's 128,100 rows, of which the tokenizer uses the first 8,001).
Prints {"dest", "parameters", "vocab_size"} as JSON.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
import sentencepiece_models  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2TokenizerFast  # noqa: E402

request = json.load(sys.stdin)
with tempfile.TemporaryDirectory() as work:
    model_file = sentencepiece_models.train(Path(work), "unigram", 8000, pad_id=0, bos_id=1, eos_id=2, unk_id=3,
                                            pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
                                            unk_piece="[UNK]")
    tokenizer = DebertaV2TokenizerFast(vocab_file=str(model_file), model_max_length=512)
config = DebertaV2Config(vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                         attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=0,
                         initializer_range=0.02, layer_norm_eps=1e-7, relative_attention=True,
                         max_relative_positions=-1, position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
                         pos_att_type=["p2c", "c2p"], position_biased_input=False, pooler_dropout=0,
                         pooler_hidden_act="gelu", pad_token_id=0, num_labels=2,
                         id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
torch.manual_seed(int(request["seed"]))
model = DebertaV2ForSequenceClassification(config).eval()
model.save_pretrained(request["dest"], safe_serialization=True)
tokenizer.save_pretrained(request["dest"])
print(json.dumps({"dest": request["dest"], "parameters": sum(p.numel() for p in model.parameters()),
                  "vocab_size": len(tokenizer), "transformers": transformers.__version__}))
