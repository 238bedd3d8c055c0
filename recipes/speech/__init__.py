"""Speech recipe: espeak-ng doctor-patient utterances -> Whisper tiny.en -> concat4 -> SmolLM2."""
