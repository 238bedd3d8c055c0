"""Consult sentences for the speech benchmark, written for MedAny: six languages, each with its English meaning.

Each language has the same five sentences (a symptom with a duration, a medicine with
its dose, an allergy, a negation, a question), so per-language numbers compare like
with like. The English column is the reference for speech-to-English translation.
"""

ENGLISH = [
    "I have had a headache for three days.",
    "I take one tablet of ibuprofen twice a day.",
    "I am allergic to penicillin.",
    "I do not have a fever.",
    "Should I see a doctor about my cough?",
]

SENTENCES = {
    "en": ENGLISH,
    "es": [
        "Tengo dolor de cabeza desde hace tres días.",
        "Tomo una pastilla de ibuprofeno dos veces al día.",
        "Soy alérgico a la penicilina.",
        "No tengo fiebre.",
        "¿Debo ver a un médico por mi tos?",
    ],
    "fr": [
        "J'ai mal à la tête depuis trois jours.",
        "Je prends un comprimé d'ibuprofène deux fois par jour.",
        "Je suis allergique à la pénicilline.",
        "Je n'ai pas de fièvre.",
        "Dois-je consulter un médecin pour ma toux ?",
    ],
    "de": [
        "Ich habe seit drei Tagen Kopfschmerzen.",
        "Ich nehme zweimal täglich eine Tablette Ibuprofen.",
        "Ich bin allergisch gegen Penicillin.",
        "Ich habe kein Fieber.",
        "Sollte ich wegen meines Hustens zum Arzt gehen?",
    ],
    "pt": [
        "Tenho dor de cabeça há três dias.",
        "Tomo um comprimido de ibuprofeno duas vezes por dia.",
        "Sou alérgico à penicilina.",
        "Não tenho febre.",
        "Devo consultar um médico por causa da minha tosse?",
    ],
    "zh": [
        "我头痛已经三天了。",
        "我每天吃两次布洛芬，每次一片。",
        "我对青霉素过敏。",
        "我没有发烧。",
        "我应该因为咳嗽去看医生吗？",
    ],
}

VOICES = {
    "en": ["en-us", "en-gb"],
    "es": ["es", "es-419"],
    "fr": ["fr-fr", "fr-be"],
    "de": ["de", "de+f3"],
    "pt": ["pt-br", "pt"],
    "zh": ["cmn", "cmn+f3"],
}
"""espeak-ng voices per language: two accents, or a second voice variant where espeak-ng has one accent."""
