# SANA Base → SANA Refine → Write as a Natron project. Natron keeps projects in a boost-XML .ntp
# whose layout Natron itself writes; this script builds the graph through Natron's Python API and
# saves it as SanaBaseRefine.ntp in the current folder:
#
#   NatronRenderer -t ofx/SanaBaseRefine.py        (or Natron's Script Editor: run this file)
#
# Install the bundle first (README "The OFX bundle") and set MODEL to a diffusers SANA-Video
# folder. Parameter names are the effects' script names (src/ofx/base.rs, src/ofx/refine.rs).
import os

import NatronEngine

MODEL = "/path/to/SANA-Video_2B_480p_diffusers"
PROMPT = "A red fox trots through fresh snow at dawn, breath steaming, low tracking shot."

app = NatronEngine.natron.getActiveInstance()

base = app.createNode("org.sana-ofx.sana.Base")
base.setScriptName("SANA_Base1")
base.getParam("prompt").set(PROMPT)
base.getParam("seed").set(42)
base.getParam("steps").set(50)
base.getParam("frameCount").set(81)
base.getParam("modelFolder").set(MODEL)
base.setPosition(0, 0)

refine = app.createNode("org.sana-ofx.sana.Refine")
refine.setScriptName("SANA_Refine1")
refine.getParam("prompt").set(PROMPT)
refine.getParam("seed").set(42)
refine.getParam("steps").set(20)  # strength 0.3: 6 passes of the SANA-Video refine mode
refine.getParam("strength").set(0.3)
refine.getParam("modelFolder").set(MODEL)
refine.connectInput(0, base)  # input 0 is Source
refine.setPosition(0, 120)

write = app.createNode("fr.inria.openfx.WriteOIIO")
write.setScriptName("Write1")
write.getParam("filename").set("sana_refined.####.exr")
write.connectInput(0, refine)
write.setPosition(0, 240)

app.saveProjectAs(os.path.abspath("SanaBaseRefine.ntp"))
