"""Fine-tuning: config, tf.data input, optimizer and schedule, callbacks, the training loop, evaluation."""
