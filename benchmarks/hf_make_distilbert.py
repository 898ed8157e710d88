"""Reference-side helper of common.distilbert_classifier: writes a random-weight DistilBERT sequence classifier.

Run by the reference interpreter (.venv-ref: torch + transformers) so kbert's side never imports torch. Reads
{"dest": folder, "vocab": vocab.txt, "seed": int} as JSON on stdin; writes to "dest" a
DistilBertForSequenceClassification with distilbert-base-uncased's exact config (dim 768, 6 layers, 12 heads,
hidden_dim 3072, vocab 30,522, 512 positions, learned positions) and 2 labels, its weights drawn by transformers'
own initialisation under torch.manual_seed(seed), and a DistilBertTokenizerFast (lower-casing WordPiece) built
from "vocab" (the 30,522-token BERT-uncased vocabulary; refused if it is not that size). Prints
{"dest", "parameters", "vocab_size"} as JSON.
"""

import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast  # noqa: E402

VOCAB_SIZE = 30522
request = json.load(sys.stdin)
tokenizer = DistilBertTokenizerFast(vocab_file=request["vocab"], do_lower_case=True, model_max_length=512)
if len(tokenizer) != VOCAB_SIZE or tokenizer.pad_token_id != 0 or tokenizer.cls_token_id != 101:
    sys.exit(f"{request['vocab']}: {len(tokenizer)} tokens, [PAD] {tokenizer.pad_token_id}, [CLS] "
             f"{tokenizer.cls_token_id}; expected BERT-uncased's {VOCAB_SIZE}, 0, 101")
# distilbert-base-uncased's config.json (transformers' DistilBertConfig defaults), plus a 2-label head.
config = DistilBertConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=512, sinusoidal_pos_embds=False,
                          n_layers=6, n_heads=12, dim=768, hidden_dim=3072, dropout=0.1, attention_dropout=0.1,
                          activation="gelu", initializer_range=0.02, qa_dropout=0.1, seq_classif_dropout=0.2,
                          pad_token_id=0, tie_weights_=True, num_labels=2,
                          id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
torch.manual_seed(int(request["seed"]))
model = DistilBertForSequenceClassification(config).eval()
model.save_pretrained(request["dest"], safe_serialization=True)
tokenizer.save_pretrained(request["dest"])
print(json.dumps({"dest": request["dest"], "parameters": sum(p.numel() for p in model.parameters()),
                  "vocab_size": len(tokenizer), "transformers": transformers.__version__}))
