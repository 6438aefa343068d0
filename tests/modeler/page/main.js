// The Camunda 8 modeler (the distribution inside Camunda Modeler and Web Modeler) with an
// empty template list; the test hands it the generated templates at run time, as the desktop
// Modeler does when it reads them from its element-templates folder.
import Modeler from 'camunda-bpmn-js/lib/camunda-cloud/Modeler';
import 'camunda-bpmn-js/dist/assets/camunda-cloud-modeler.css';
import diagram from './diagram.bpmn';

const modeler = new Modeler({
  container: '#canvas',
  propertiesPanel: { parent: '#properties' },
  // Text fields write to the model at once instead of after a 300 ms debounce.
  debounceInput: false,
  elementTemplates: [],
});

const templateErrors = [];
modeler.on('elementTemplates.errors', (event) => templateErrors.push(...event.errors.map(String)));

window.modeler = modeler;
window.templateErrors = templateErrors;
window.diagram = diagram;
window.ready = modeler.importXML(diagram).then(({ warnings }) => warnings.map(String));
